package drain

import (
	"cmp"
	"slices"
	"time"

	"github.com/wgbird/wgbird/internal/api"
)

// Traffic follows one service's WireGuard peers over successive reads of
// their counters and says when the interface has gone quiet: every peer's
// received bytes unchanged for the quiet period. Only what clients send
// counts: a drained server's own handshake retries and keepalives move its
// tx counters for up to 90 s after every client has gone elsewhere. A peer's history before
// the first read is unknown, so quiet takes at least one quiet period of
// reads. It does no I/O: feed it PeersReply values.
type Traffic struct {
	// Window is the span of the per-peer "bytes in the last ..." figure.
	Window time.Duration

	start  time.Time
	period time.Duration
	peers  map[string]*peerTrack
}

type peerTrack struct {
	endpoint string
	rx, tx   int64
	changed  time.Time // when the counters last moved (or the peer appeared)
	moved    bool      // seen moving, or appeared after the first read
	hist     []point   // totals within Window, oldest first
}

type point struct {
	at    time.Time
	total int64
}

// TrafficState is what Traffic knows after a read.
type TrafficState struct {
	At     time.Time
	Period time.Duration
	// QuietFor is how long no counter has moved (bounded by how long
	// Traffic has been watching).
	QuietFor time.Duration
	Quiet    bool
	Peers    int
	// Window is the span of ActivePeer.Recent.
	Window time.Duration
	// DeviceMissing: the interface is gone, so nothing flows.
	DeviceMissing bool
	// Active are the peers seen moving within the period, the busiest
	// first. Peers that have not moved since the first read are not
	// listed, yet count against Quiet until a period has passed.
	Active []ActivePeer
}

// ActivePeer is a peer whose counters moved within the quiet period.
type ActivePeer struct {
	PublicKey string
	Endpoint  string
	// Idle is how long ago its counters last moved.
	Idle time.Duration
	// Recent is its rx+tx bytes within the Window before the read.
	Recent int64
}

// NewTraffic returns a Traffic with a 5 s window.
func NewTraffic() *Traffic {
	return &Traffic{Window: 5 * time.Second, peers: map[string]*peerTrack{}}
}

// Observe takes one read of the peers and returns the state after it.
// Reads must come in time order (r.ReadAt).
func (t *Traffic) Observe(r api.PeersReply) TrafficState {
	now := r.ReadAt
	first := t.start.IsZero()
	if first {
		t.start = now
	}
	t.period = time.Duration(r.QuietPeriod)
	seen := make(map[string]bool, len(r.Peers))
	for _, p := range r.Peers {
		seen[p.PublicKey] = true
		pt, ok := t.peers[p.PublicKey]
		if !ok {
			pt = &peerTrack{changed: now, moved: !first, rx: p.RxBytes, tx: p.TxBytes}
			t.peers[p.PublicKey] = pt
		} else if p.RxBytes != pt.rx {
			pt.changed, pt.moved = now, true
			if p.RxBytes < pt.rx || p.TxBytes < pt.tx {
				// Counters went back: the peer or device was re-created.
				pt.hist = nil
			}
		}
		pt.rx, pt.tx = p.RxBytes, p.TxBytes
		pt.endpoint = p.Endpoint
		pt.hist = append(pt.hist, point{at: now, total: p.RxBytes + p.TxBytes})
		// Keep one point at or before the window's start, for the delta.
		for len(pt.hist) > 1 && !pt.hist[1].at.After(now.Add(-t.Window)) {
			pt.hist = pt.hist[1:]
		}
	}
	for k := range t.peers {
		if !seen[k] {
			delete(t.peers, k) // removed peers carry no traffic
		}
	}

	st := TrafficState{At: now, Period: t.period, Window: t.Window, Peers: len(r.Peers), DeviceMissing: r.DeviceMissing}
	st.QuietFor = now.Sub(t.start)
	for k, pt := range t.peers {
		idle := now.Sub(pt.changed)
		st.QuietFor = min(st.QuietFor, idle)
		if pt.moved && idle < t.period {
			st.Active = append(st.Active, ActivePeer{
				PublicKey: k,
				Endpoint:  pt.endpoint,
				Idle:      idle,
				Recent:    pt.hist[len(pt.hist)-1].total - pt.hist[0].total,
			})
		}
	}
	st.Quiet = st.QuietFor >= t.period
	slices.SortFunc(st.Active, func(a, b ActivePeer) int {
		return cmp.Or(cmp.Compare(b.Recent, a.Recent), cmp.Compare(a.Idle, b.Idle), cmp.Compare(a.PublicKey, b.PublicKey))
	})
	return st
}
