package continuity

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/group"
	"github.com/wgbird/wgbird/internal/health"
	"github.com/wgbird/wgbird/internal/wireguard"
)

func key(b byte) wgtypes.Key {
	var k wgtypes.Key
	k[0] = b
	return k
}

func udp(s string) *net.UDPAddr { return net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s)) }

// The group hears this server's state and its recently active peers with
// an endpoint, the most recently active first; a drained server says so.
func TestSnapshot(t *testing.T) {
	m := New([]Config{{Service: "wg0", Interface: "wg0", Takeover: true}}, nil, nil, nil, nil)
	u := m.byName["wg0"]
	now := time.Now()
	dev := &wgtypes.Device{Peers: []wgtypes.Peer{
		{PublicKey: key(1), Endpoint: udp("203.0.113.1:1"), LastHandshakeTime: now.Add(-time.Minute)},
		{PublicKey: key(2), Endpoint: udp("203.0.113.2:2"), LastHandshakeTime: now.Add(-time.Second)},
		{PublicKey: key(3), LastHandshakeTime: now},                                                        // no endpoint
		{PublicKey: key(4), Endpoint: udp("203.0.113.4:4"), LastHandshakeTime: now.Add(-10 * time.Minute)}, // expired
		{PublicKey: key(5), Endpoint: udp("[::ffff:203.0.113.5]:5")},                                       // never
	}}
	u.observe(health.Announced, false, wireguard.PeersFromWgctrl(dev))
	s := u.snapshot()
	if s.State != group.Announced {
		t.Errorf("state = %s, want announced", s.State)
	}
	if len(s.Peers) != 2 || s.Peers[0].Peer != key(2) || s.Peers[1].Peer != key(1) {
		t.Fatalf("peers = %+v, want key 2 then key 1", s.Peers)
	}
	if s.Peers[0].Endpoint != netip.MustParseAddrPort("203.0.113.2:2") || s.Peers[0].HandshakeAge < time.Second {
		t.Errorf("entry = %+v", s.Peers[0])
	}
	// Counters moving count as activity, after the first read.
	dev2 := *dev
	dev2.Peers = append([]wgtypes.Peer(nil), dev.Peers...)
	dev2.Peers[4].ReceiveBytes = 100
	u.observe(health.Announced, true, wireguard.PeersFromWgctrl(&dev2))
	s = u.snapshot()
	if s.State != group.Drained {
		t.Errorf("state = %s, want drained", s.State)
	}
	if len(s.Peers) != 3 || s.Peers[0].Peer != key(5) || s.Peers[0].Endpoint != netip.MustParseAddrPort("203.0.113.5:5") {
		t.Errorf("peers = %+v, want key 5 (just active, its endpoint unmapped) first", s.Peers)
	}
	st := m.Status("wg0")
	if st == nil || st.VIPSource != nil || st.Takeover == nil || !st.Takeover.Enabled || st.Group != nil {
		t.Errorf("status = %+v", st)
	}
	if m.Status("nope") != nil {
		t.Error("a status for an unknown service")
	}
}

// recordingReader is a DeviceReader that records what it is asked for.
type recordingReader struct {
	dev   *wgtypes.Device
	asked []string
}

func (r *recordingReader) Device(_ context.Context, name string) (*wgtypes.Device, error) {
	r.asked = append(r.asked, "device "+name)
	return r.dev, nil
}

func (r *recordingReader) Peers(_ context.Context, name string) (*wireguard.Peers, error) {
	r.asked = append(r.asked, "peers "+name)
	return wireguard.PeersFromWgctrl(r.dev), nil
}

// failingClient is a takeover.Client that fails the test when continuity
// reads the device through it instead of the reader it was given.
type failingClient struct{ t *testing.T }

func (c failingClient) Device(name string) (*wgtypes.Device, error) {
	c.t.Errorf("Device(%q) read through the wgctrl client, want through the shared reader", name)
	return nil, errors.New("not here")
}

func (c failingClient) ConfigureDevice(string, wgtypes.Config) error { return nil }

// Continuity reads the device through the daemon's Reader (the one that
// keeps one read per device in flight), never through a client of its
// own: a hung wireguard-go then holds one connection, not two.
func TestReadsGoThroughReader(t *testing.T) {
	rd := &recordingReader{dev: &wgtypes.Device{Name: "wg0", ListenPort: 51820, PrivateKey: key(7)}}
	m := New([]Config{{Service: "s", Interface: "wg0", Takeover: true}}, failingClient{t}, rd, nil, nil)
	u := m.byName["s"]
	u.readDevice(context.Background())
	if _, err := u.groupKey(context.Background()); err != nil {
		t.Fatalf("groupKey: %v", err)
	}
	if diff := cmp.Diff([]string{"peers wg0", "device wg0"}, rd.asked); diff != "" {
		t.Errorf("devices read through the reader (-want +got):\n%s", diff)
	}
	if p := u.port(); p != 51820 {
		t.Errorf("port = %d, want the device's 51820", p)
	}
}

// The kick reads the full device when the evaluation's figures moved (a
// peer added or removed, a client's handshake; the probe's own handshake
// does not count), and otherwise only fullReadEvery after the last read.
func TestReadDue(t *testing.T) {
	m := New([]Config{{Service: "wg0", Interface: "wg0", Takeover: true}}, nil, nil, nil, nil)
	u := m.byName["wg0"]
	t0 := time.Now()
	hs := t0.Add(-time.Minute)
	if !u.readDue(t0, time.Time{}) {
		t.Fatal("no read yet: want one")
	}
	u.dev = &wireguard.Peers{}
	u.observeSummary(&health.DeviceStats{Peers: 3, NewestHandshake: hs, NewestClientHandshake: hs})
	if !u.readDue(t0, t0) {
		t.Error("first figures: want a read")
	}
	steps := []struct {
		name  string
		stats *health.DeviceStats
		now   time.Duration // since the last read, at t0
		want  bool
	}{
		{"figures unchanged", &health.DeviceStats{Peers: 3, NewestHandshake: hs, NewestClientHandshake: hs}, time.Second, false},
		{"the probe handshook", &health.DeviceStats{Peers: 3, NewestHandshake: t0, NewestClientHandshake: hs}, time.Second, false},
		{"not read by the check", nil, 2 * time.Second, false},
		{"fullReadEvery passed", nil, fullReadEvery, true},
		{"a client handshook", &health.DeviceStats{Peers: 3, NewestHandshake: t0, NewestClientHandshake: t0}, time.Second, true},
		{"and nothing since", &health.DeviceStats{Peers: 3, NewestHandshake: t0, NewestClientHandshake: t0}, time.Second, false},
		{"a peer removed", &health.DeviceStats{Peers: 2, NewestHandshake: t0, NewestClientHandshake: t0}, time.Second, true},
		{"the listen port changed", &health.DeviceStats{Peers: 2, NewestHandshake: t0, NewestClientHandshake: t0, ListenPort: 51821}, time.Second, true},
	}
	for _, s := range steps {
		u.observeSummary(s.stats)
		if got := u.readDue(t0.Add(s.now), t0); got != s.want {
			t.Errorf("%s: readDue = %v, want %v", s.name, got, s.want)
		}
	}
}

// The route check goes through many clients a round at a time, each
// address once a pass, and reports a pass's warnings only when it ends;
// a handful of clients are all checked every round.
func TestRoutePass(t *testing.T) {
	peers := make([]wireguard.Peer, 150)
	for i := range peers {
		peers[i] = wireguard.Peer{Key: key(byte(i)), Endpoint: netip.MustParseAddrPort(fmt.Sprintf("203.0.113.%d:%d", i%100+1, 1000+i))}
	}
	peers[3].Endpoint = netip.AddrPort{}                          // no endpoint: skipped
	peers[4].Endpoint = netip.MustParseAddrPort("127.0.0.1:9000") // loopback: skipped
	var rp routePass
	var asked []string
	check := func(p wireguard.Peer, ep netip.AddrPort) string {
		asked = append(asked, ep.Addr().String())
		if ep.Addr() == netip.MustParseAddr("203.0.113.8") {
			return "client " + ep.String()
		}
		return ""
	}
	// 100 distinct addresses: peers 3 and 4 are skipped, but their
	// addresses come again at 103 and 104; the rest of 100-149 repeat.
	w, done := rp.round(peers, check)
	if done || w != nil || len(asked) != routeChecksPerRound {
		t.Fatalf("first round: done %v, warnings %v, %d lookups; want %d lookups and the pass going on", done, w, len(asked), routeChecksPerRound)
	}
	w, done = rp.round(peers, check)
	if !done || len(asked) != 100 {
		t.Fatalf("second round: done %v, %d lookups in all; want the pass done after 100", done, len(asked))
	}
	if diff := cmp.Diff([]string{"client 203.0.113.8:1007"}, w); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	// The next pass starts over; few peers make a pass a round.
	asked = nil
	if w, done := rp.round(peers[:10], check); !done || len(asked) != 8 || len(w) != 1 {
		t.Errorf("ten peers: done %v, %d lookups, warnings %v; want one round of 8 lookups and the warning", done, len(asked), w)
	}
}

// Activity: a peer's counters moving count from the second read on, and
// a peer gone from the device is forgotten.
func TestNoteActivity(t *testing.T) {
	m := New([]Config{{Service: "wg0", Interface: "wg0", Takeover: true}}, nil, nil, nil, nil)
	u := m.byName["wg0"]
	t0 := time.Now()
	read := func(at time.Time, peers ...wireguard.Peer) {
		u.mu.Lock()
		u.noteActivity(&wireguard.Peers{Peers: peers}, at)
		u.mu.Unlock()
	}
	read(t0, wireguard.Peer{Key: key(1), RxBytes: 10}, wireguard.Peer{Key: key(2), RxBytes: 10})
	read(t0.Add(time.Second), wireguard.Peer{Key: key(1), RxBytes: 10}, wireguard.Peer{Key: key(2), RxBytes: 20})
	read(t0.Add(2*time.Second), wireguard.Peer{Key: key(2), RxBytes: 20, TxBytes: 5})
	want := map[wgtypes.Key]time.Time{key(2): t0.Add(2 * time.Second)}
	got := map[wgtypes.Key]time.Time{}
	for k, a := range u.activity {
		got[k] = a.at
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("activity (-want +got):\n%s", diff)
	}
}
