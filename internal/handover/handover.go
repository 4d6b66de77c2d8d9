// Package handover decides, from the WireGuard packets on the wire and
// what the anycast group says, which client this server must take over
// and when, and times the first packet back. It does no I/O.
package handover

import (
	"iter"
	"maps"
	"net/netip"
	"slices"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/api"
	"github.com/wgbird/wgbird/internal/sniff"
)

// Timing of the Tracker.
const (
	// Cooldown is the least time between two takeovers of one peer: a
	// re-added peer's handshake in flight must not be cut short.
	Cooldown = time.Second
	// KnownFor is how long a session index this server handed out is
	// remembered: a session lives 180 s, its keys a little longer.
	KnownFor = 5 * time.Minute
	// PendingFor is how long a takeover waits for the client's answer.
	PendingFor = 10 * time.Second
	// verifyAfter is how long a suspect index is watched before its
	// peer's counters decide (more than one device read apart).
	verifyAfter = 1500 * time.Millisecond
	// maxKnown bounds the known set (sniff.MaxKnown are filtered in the
	// kernel; the rest are checked here).
	maxKnown = 4 * sniff.MaxKnown
)

// Peer is what this server's device says of a peer.
type Peer struct {
	Key           wgtypes.Key
	Endpoint      netip.AddrPort
	LastHandshake time.Time
	RxBytes       int64
}

// Group finds a peer by what another member reported: its endpoint or the
// receiver index of its session there.
type Group interface {
	Lookup(ep netip.AddrPort, index uint32, now time.Time) (key wgtypes.Key, ok bool)
}

// Take is a decision to take over Peer at Endpoint.
type Take struct {
	Peer     wgtypes.Key
	Endpoint netip.AddrPort
	// Via says how the peer was found: "group" or "device".
	Via string
}

// Back is a completed takeover: the client's handshake response came
// back After the takeover began.
type Back struct {
	Peer  wgtypes.Key
	After time.Duration
}

// Stats count what the Tracker saw and did (the status's form).
type Stats = api.TakeoverStats

// Tracker follows one service's sessions. Not safe for concurrent use.
type Tracker struct {
	since    time.Time // indexes of sessions made before are not known
	known    map[uint32]time.Time
	pending  map[wgtypes.Key]*pending
	last     map[wgtypes.Key]time.Time
	suspects map[uint32]suspect
	// peers is the device's peer list as last read (the tracker's own
	// copy, refilled in place); byKey and byEP index it.
	peers  []Peer
	byKey  map[wgtypes.Key]int32
	byEP   map[netip.AddrPort]int32
	active bool
	stats  Stats
	dirty  bool
}

type pending struct {
	start time.Time
	ep    netip.AddrPort
	index uint32 // sender index of our initiation, once seen
}

type suspect struct {
	peer  wgtypes.Key
	rx    int64
	first time.Time
}

// New returns a Tracker that starts watching at now.
func New(now time.Time) *Tracker {
	t := &Tracker{}
	t.Forget(now)
	return t
}

// Forget drops every known index, as when the device was re-created or
// the service stopped announcing: sessions from before now are treated as
// not known and verified before anything is done about them.
func (t *Tracker) Forget(now time.Time) {
	t.since = now
	t.known = map[uint32]time.Time{}
	t.pending = map[wgtypes.Key]*pending{}
	t.last = map[wgtypes.Key]time.Time{}
	t.suspects = map[uint32]suspect{}
	t.dirty = true
	if t.byKey == nil {
		t.byKey, t.byEP = map[wgtypes.Key]int32{}, map[netip.AddrPort]int32{}
	}
}

// SetActive says whether this server announces (and is not drained):
// only then are clients taken over.
func (t *Tracker) SetActive(active bool) { t.active = active }

// SetPeers records the device's peers as just read, in one copy: the
// caller converts its own read on the fly. The list and its indexes are
// cleared and refilled, not made again: a device read every few seconds
// with thousands of peers would otherwise allocate them anew each time.
// A key twice keeps its first entry, as WireGuard has each key once.
func (t *Tracker) SetPeers(peers iter.Seq[Peer]) {
	t.peers = t.peers[:0]
	clear(t.byKey)
	clear(t.byEP)
	for p := range peers {
		if _, dup := t.byKey[p.Key]; dup {
			continue
		}
		i := int32(len(t.peers))
		t.peers = append(t.peers, p)
		t.byKey[p.Key] = i
		if p.Endpoint.IsValid() {
			t.byEP[p.Endpoint] = i
		}
	}
}

// peer returns the device's peer with key, as last read.
func (t *Tracker) peer(key wgtypes.Key) (Peer, bool) {
	i, ok := t.byKey[key]
	if !ok {
		return Peer{}, false
	}
	return t.peers[i], true
}

// Knows reports whether the device, as last read, has a peer at ep.
func (t *Tracker) Knows(ep netip.AddrPort) bool {
	_, ok := t.byEP[ep]
	return ok
}

// Known returns the known indexes, newest first, and whether they changed
// since the last call (the kernel filter then needs them).
func (t *Tracker) Known() ([]uint32, bool) {
	changed := t.dirty
	t.dirty = false
	ks := slices.Collect(maps.Keys(t.known))
	slices.SortFunc(ks, func(a, b uint32) int { return t.known[b].Compare(t.known[a]) })
	return ks, changed
}

// Stats returns the counters.
func (t *Tracker) Stats() Stats { return t.stats }

func (t *Tracker) learn(index uint32, now time.Time) {
	if _, ok := t.known[index]; !ok {
		t.dirty = true
	}
	t.known[index] = now
	if len(t.known) > maxKnown {
		ks, _ := t.Known()
		for _, k := range ks[maxKnown:] {
			delete(t.known, k)
		}
	}
}

// Packet takes one packet off the wire and returns a takeover to start,
// or a completed one to time.
func (t *Tracker) Packet(p sniff.Packet, g Group, now time.Time) (take *Take, back *Back) {
	switch {
	case p.Outgoing && p.Type == sniff.Initiation:
		t.learn(p.Sender, now)
		for _, pd := range t.pending {
			if pd.ep == p.Remote && pd.index == 0 {
				pd.index = p.Sender
			}
		}
	case p.Outgoing && p.Type == sniff.Response:
		t.learn(p.Sender, now)
	case !p.Outgoing && p.Type == sniff.Response:
		for k, pd := range t.pending {
			if pd.index != 0 && pd.index == p.Receiver {
				delete(t.pending, k)
				t.stats.Answered++
				return nil, &Back{Peer: k, After: now.Sub(pd.start)}
			}
		}
	case !p.Outgoing && p.Type == sniff.Transport:
		return t.transport(p, g, now), nil
	}
	return nil, nil
}

func (t *Tracker) transport(p sniff.Packet, g Group, now time.Time) *Take {
	if _, ok := t.known[p.Receiver]; ok {
		return nil // learned after the filter was last set
	}
	if !t.active {
		t.stats.Inactive++
		return nil
	}
	key, via, ok := t.find(p, g, now)
	if !ok {
		t.stats.Unmapped++
		return nil
	}
	if now.Sub(t.last[key]) < Cooldown {
		return nil
	}
	if _, ok := t.pending[key]; ok && now.Sub(t.pending[key].start) < Cooldown {
		return nil
	}
	// A session of ours made before we watched has an index we never
	// saw: its packets look the same. Watch it until the device's
	// counters say whether WireGuard accepts them.
	if dp, ok := t.peer(key); ok && !dp.LastHandshake.IsZero() && !dp.LastHandshake.After(t.since) &&
		now.Sub(dp.LastHandshake) < 180*time.Second+10*time.Second {
		s, seen := t.suspects[p.Receiver]
		if !seen || s.peer != key {
			t.suspects[p.Receiver] = suspect{peer: key, rx: dp.RxBytes, first: now}
			return nil
		}
		if now.Sub(s.first) < verifyAfter {
			return nil
		}
		delete(t.suspects, p.Receiver)
		if dp.RxBytes > s.rx {
			t.stats.Verified++
			t.learn(p.Receiver, now)
			return nil
		}
	}
	t.last[key] = now
	t.pending[key] = &pending{start: now, ep: p.Remote}
	t.stats.Takeovers++
	return &Take{Peer: key, Endpoint: p.Remote, Via: via}
}

func (t *Tracker) find(p sniff.Packet, g Group, now time.Time) (wgtypes.Key, string, bool) {
	if g != nil {
		if k, ok := g.Lookup(p.Remote, p.Receiver, now); ok {
			if _, mine := t.byKey[k]; mine || len(t.peers) == 0 {
				return k, "group", true
			}
		}
	}
	if i, ok := t.byEP[p.Remote]; ok {
		return t.peers[i].Key, "device", true
	}
	return wgtypes.Key{}, "", false
}

// Expire drops what has outlived its time and returns how many pending
// takeovers went unanswered.
func (t *Tracker) Expire(now time.Time) {
	for k, at := range t.known {
		if now.Sub(at) > KnownFor {
			delete(t.known, k)
			t.dirty = true
		}
	}
	for k, pd := range t.pending {
		if now.Sub(pd.start) > PendingFor {
			delete(t.pending, k)
			t.stats.Unanswered++
		}
	}
	for k, s := range t.suspects {
		if now.Sub(s.first) > PendingFor {
			delete(t.suspects, k)
		}
	}
}
