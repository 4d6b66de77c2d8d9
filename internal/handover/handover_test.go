package handover

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/sniff"
)

var (
	t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	ep = netip.MustParseAddrPort("203.0.113.9:40000")
)

func key(b byte) wgtypes.Key {
	var k wgtypes.Key
	k[0] = b
	return k
}

type fakeGroup map[netip.AddrPort]wgtypes.Key

func (g fakeGroup) Lookup(e netip.AddrPort, _ uint32, _ time.Time) (wgtypes.Key, bool) {
	k, ok := g[e]
	return k, ok
}

func transport(recv uint32) sniff.Packet {
	return sniff.Packet{Type: sniff.Transport, Remote: ep, Receiver: recv}
}

func TestTakeoverAndFirstPacketBack(t *testing.T) {
	tr := New(t0)
	tr.SetActive(true)
	tr.SetPeers(slices.Values([]Peer{{Key: key(1)}})) // a fresh device: no endpoint, no session
	g := fakeGroup{ep: key(1)}

	take, _ := tr.Packet(transport(0xaaaa), g, t0.Add(10*time.Millisecond))
	if diff := cmp.Diff(&Take{Peer: key(1), Endpoint: ep, Via: "group"}, take, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Fatalf("take (-want +got):\n%s", diff)
	}
	// The client's next packets on the old session: no second takeover
	// while the first one's handshake is in flight.
	if take, _ := tr.Packet(transport(0xaaaa), g, t0.Add(110*time.Millisecond)); take != nil {
		t.Errorf("a second takeover within the cooldown: %+v", take)
	}
	// Our initiation goes out, the client answers.
	tr.Packet(sniff.Packet{Type: sniff.Initiation, Outgoing: true, Remote: ep, Sender: 77}, g, t0.Add(12*time.Millisecond))
	_, back := tr.Packet(sniff.Packet{Type: sniff.Response, Remote: ep, Sender: 5, Receiver: 77}, g, t0.Add(40*time.Millisecond))
	if back == nil || back.Peer != key(1) || back.After != 30*time.Millisecond {
		t.Fatalf("back = %+v, want key 1 after 30ms", back)
	}
	// The new session's index is ours now: the filter is told.
	known, changed := tr.Known()
	if !changed || len(known) != 1 || known[0] != 77 {
		t.Errorf("known = %v (changed %v), want [77]", known, changed)
	}
	if take, _ := tr.Packet(transport(77), g, t0.Add(2*time.Second)); take != nil {
		t.Errorf("took over our own session: %+v", take)
	}
	if st := tr.Stats(); st.Takeovers != 1 || st.Answered != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestNoTakeoverWhileInactive(t *testing.T) {
	tr := New(t0)
	tr.SetPeers(slices.Values([]Peer{{Key: key(1), Endpoint: ep}}))
	if take, _ := tr.Packet(transport(1), nil, t0); take != nil {
		t.Errorf("a drained or withdrawn server took over: %+v", take)
	}
	if tr.Stats().Inactive != 1 {
		t.Errorf("stats = %+v", tr.Stats())
	}
}

func TestUnmappedEndpoint(t *testing.T) {
	tr := New(t0)
	tr.SetActive(true)
	tr.SetPeers(slices.Values([]Peer{{Key: key(1), Endpoint: netip.MustParseAddrPort("198.51.100.1:1")}}))
	if take, _ := tr.Packet(transport(1), fakeGroup{}, t0); take != nil {
		t.Errorf("took over an unknown endpoint: %+v", take)
	}
	// A group entry for a peer this device does not have is not used.
	if take, _ := tr.Packet(transport(1), fakeGroup{ep: key(9)}, t0); take != nil {
		t.Errorf("took over a peer the device lacks: %+v", take)
	}
	if tr.Stats().Unmapped != 2 {
		t.Errorf("stats = %+v", tr.Stats())
	}
}

func TestOwnSessionsLearnedFromResponses(t *testing.T) {
	tr := New(t0)
	tr.SetActive(true)
	tr.SetPeers(slices.Values([]Peer{{Key: key(1), Endpoint: ep, LastHandshake: t0.Add(time.Second)}}))
	tr.Packet(sniff.Packet{Type: sniff.Response, Outgoing: true, Remote: ep, Sender: 42, Receiver: 3}, nil, t0.Add(time.Second))
	if take, _ := tr.Packet(transport(42), nil, t0.Add(2*time.Second)); take != nil {
		t.Errorf("took over a session this server answered: %+v", take)
	}
	// The client moved to another server's session (a failback).
	if take, _ := tr.Packet(transport(43), nil, t0.Add(3*time.Second)); take == nil || take.Via != "device" {
		t.Errorf("no takeover for another server's session: %+v", take)
	}
}

// A session made before wgbird watched: its index was never seen. The
// device's counters decide.
func TestSessionFromBeforeIsVerified(t *testing.T) {
	for _, c := range []struct {
		name   string
		rxMore int64
		take   bool
	}{{"accepted by WireGuard", 148, false}, {"dropped by WireGuard", 0, true}} {
		t.Run(c.name, func(t *testing.T) {
			tr := New(t0)
			tr.SetActive(true)
			tr.SetPeers(slices.Values([]Peer{{Key: key(1), Endpoint: ep, LastHandshake: t0.Add(-time.Minute), RxBytes: 1000}}))
			if take, _ := tr.Packet(transport(5), nil, t0); take != nil {
				t.Fatalf("took over at first sight of an index that may be ours: %+v", take)
			}
			tr.SetPeers(slices.Values([]Peer{{Key: key(1), Endpoint: ep, LastHandshake: t0.Add(-time.Minute), RxBytes: 1000 + c.rxMore}}))
			if take, _ := tr.Packet(transport(5), nil, t0.Add(time.Second)); take != nil {
				t.Fatalf("decided before verifyAfter: %+v", take)
			}
			take, _ := tr.Packet(transport(5), nil, t0.Add(2*time.Second))
			if (take != nil) != c.take {
				t.Errorf("take = %+v, want a takeover: %v", take, c.take)
			}
			if known, _ := tr.Known(); (len(known) == 1) == c.take {
				t.Errorf("known = %v", known)
			}
		})
	}
}

func TestForgetAndExpire(t *testing.T) {
	tr := New(t0)
	tr.SetActive(true)
	tr.SetPeers(slices.Values([]Peer{{Key: key(1), Endpoint: ep}}))
	tr.Packet(sniff.Packet{Type: sniff.Response, Outgoing: true, Remote: ep, Sender: 42}, nil, t0)
	tr.Expire(t0.Add(KnownFor + time.Second))
	if known, _ := tr.Known(); len(known) != 0 {
		t.Errorf("known after KnownFor: %v", known)
	}
	tr.Packet(sniff.Packet{Type: sniff.Response, Outgoing: true, Remote: ep, Sender: 42}, nil, t0)
	tr.Forget(t0.Add(time.Second))
	if known, changed := tr.Known(); len(known) != 0 || !changed {
		t.Errorf("known after Forget: %v (changed %v)", known, changed)
	}
	if take, _ := tr.Packet(transport(42), nil, t0.Add(2*time.Second)); take == nil {
		t.Error("no takeover after the device was re-created")
	}
	tr.Expire(t0.Add(time.Minute))
	if st := tr.Stats(); st.Unanswered != 1 {
		t.Errorf("stats = %+v, want 1 unanswered", st)
	}
}

// SetPeers refills the peer list in place: a peer gone from the device
// is no longer found by key or endpoint, a moved one is found at its new
// endpoint, and a key twice keeps its first entry.
func TestSetPeersRefills(t *testing.T) {
	tr := New(time.Now())
	old := netip.MustParseAddrPort("198.51.100.1:1")
	moved := netip.MustParseAddrPort("198.51.100.2:2")
	tr.SetPeers(slices.Values([]Peer{{Key: key(1), Endpoint: old}, {Key: key(2), Endpoint: ep}}))
	if !tr.Knows(old) || !tr.Knows(ep) {
		t.Fatal("the first read's endpoints are not known")
	}
	tr.SetPeers(slices.Values([]Peer{{Key: key(1), Endpoint: moved, RxBytes: 5}, {Key: key(1), Endpoint: old, RxBytes: 9}}))
	if tr.Knows(ep) {
		t.Error("a removed peer's endpoint is still known")
	}
	if _, ok := tr.peer(key(2)); ok {
		t.Error("a removed peer is still found by key")
	}
	if p, ok := tr.peer(key(1)); !ok || p.RxBytes != 5 || p.Endpoint != moved {
		t.Errorf("peer 1 = %+v, %v; want its first entry (at %s, 5 bytes)", p, ok, moved)
	}
	if k, via, ok := tr.find(sniff.Packet{Remote: moved}, nil, time.Now()); !ok || k != key(1) || via != "device" {
		t.Errorf("find(%s) = %v, %q, %v; want peer 1 by the device", moved, k, via, ok)
	}
}
