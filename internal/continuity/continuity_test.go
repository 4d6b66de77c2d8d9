package continuity

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/group"
	"github.com/wgbird/wgbird/internal/health"
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
	m := New([]Config{{Service: "wg0", Interface: "wg0", Takeover: true}}, nil, nil, nil)
	u := m.byName["wg0"]
	now := time.Now()
	dev := &wgtypes.Device{Peers: []wgtypes.Peer{
		{PublicKey: key(1), Endpoint: udp("203.0.113.1:1"), LastHandshakeTime: now.Add(-time.Minute)},
		{PublicKey: key(2), Endpoint: udp("203.0.113.2:2"), LastHandshakeTime: now.Add(-time.Second)},
		{PublicKey: key(3), LastHandshakeTime: now},                                                        // no endpoint
		{PublicKey: key(4), Endpoint: udp("203.0.113.4:4"), LastHandshakeTime: now.Add(-10 * time.Minute)}, // expired
		{PublicKey: key(5), Endpoint: udp("[::ffff:203.0.113.5]:5")},                                       // never
	}}
	u.observe(health.Announced, false, dev)
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
	u.observe(health.Announced, true, &dev2)
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
