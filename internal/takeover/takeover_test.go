package takeover

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

var (
	now = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	ep  = netip.MustParseAddrPort("203.0.113.9:40000")
)

func key(t *testing.T) wgtypes.Key {
	t.Helper()
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey()
}

func ipnet(s string) net.IPNet {
	_, n, _ := net.ParseCIDR(s)
	return *n
}

func dur(d time.Duration) *time.Duration { return &d }

// fakeDevice applies PeerConfigs to an in-memory peer list as WireGuard
// does, and records them.
type fakeDevice struct {
	peers []wgtypes.Peer
	calls []wgtypes.PeerConfig
	fail  int // fail the call with this 1-based number
	block chan struct{}
}

func (f *fakeDevice) Device(string) (*wgtypes.Device, error) {
	if f.block != nil {
		<-f.block
	}
	return &wgtypes.Device{Peers: slices.Clone(f.peers)}, nil
}

func (f *fakeDevice) ConfigureDevice(_ string, cfg wgtypes.Config) error {
	for _, pc := range cfg.Peers {
		f.calls = append(f.calls, pc)
		if len(f.calls) == f.fail {
			return errors.New("injected")
		}
		i := slices.IndexFunc(f.peers, func(p wgtypes.Peer) bool { return p.PublicKey == pc.PublicKey })
		if pc.Remove {
			if i >= 0 {
				f.peers = slices.Delete(f.peers, i, i+1)
			}
			continue
		}
		if i < 0 {
			if pc.UpdateOnly {
				continue
			}
			f.peers = append(f.peers, wgtypes.Peer{PublicKey: pc.PublicKey})
			i = len(f.peers) - 1
		}
		p := &f.peers[i]
		if pc.PresharedKey != nil {
			p.PresharedKey = *pc.PresharedKey
		}
		if pc.Endpoint != nil {
			p.Endpoint = pc.Endpoint
		}
		if pc.PersistentKeepaliveInterval != nil {
			p.PersistentKeepaliveInterval = *pc.PersistentKeepaliveInterval
		}
		if pc.ReplaceAllowedIPs {
			p.AllowedIPs = nil
		}
		p.AllowedIPs = append(p.AllowedIPs, pc.AllowedIPs...)
	}
	return nil
}

func TestPlanKeepaliveToggle(t *testing.T) {
	k := key(t)
	udp := net.UDPAddrFromAddrPort(ep)
	for _, c := range []struct {
		name string
		ka   time.Duration
		want []wgtypes.PeerConfig
	}{
		{"keepalive off", 0, []wgtypes.PeerConfig{
			{PublicKey: k, UpdateOnly: true, Endpoint: udp, PersistentKeepaliveInterval: dur(time.Second)},
			{PublicKey: k, UpdateOnly: true, PersistentKeepaliveInterval: dur(0)},
		}},
		{"keepalive 25s", 25 * time.Second, []wgtypes.PeerConfig{
			{PublicKey: k, UpdateOnly: true, Endpoint: udp, PersistentKeepaliveInterval: dur(0)},
			{PublicKey: k, UpdateOnly: true, Endpoint: udp, PersistentKeepaliveInterval: dur(25 * time.Second)},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := wgtypes.Peer{PublicKey: k, PersistentKeepaliveInterval: c.ka, LastHandshakeTime: now.Add(-RejectAfterTime - time.Minute)}
			got := PlanFor(p, ep, now)
			if got.Method != Keepalive {
				t.Errorf("method = %s, want %s", got.Method, Keepalive)
			}
			if diff := cmp.Diff(c.want, got.Steps); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlanReaddsAPeerWithASession(t *testing.T) {
	k := key(t)
	psk, _ := wgtypes.GenerateKey()
	p := wgtypes.Peer{
		PublicKey: k, PresharedKey: psk, LastHandshakeTime: now.Add(-30 * time.Second),
		AllowedIPs: []net.IPNet{ipnet("100.64.0.2/32"), ipnet("fd64::2/128")},
	}
	got := PlanFor(p, ep, now)
	want := []wgtypes.PeerConfig{
		{PublicKey: k, Remove: true},
		{PublicKey: k, PresharedKey: &psk, ReplaceAllowedIPs: true, AllowedIPs: p.AllowedIPs,
			Endpoint: net.UDPAddrFromAddrPort(ep), PersistentKeepaliveInterval: dur(time.Second)},
		{PublicKey: k, UpdateOnly: true, PersistentKeepaliveInterval: dur(0)},
	}
	if got.Method != Readd {
		t.Errorf("method = %s, want %s", got.Method, Readd)
	}
	if diff := cmp.Diff(want, got.Steps); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
}

// config is what the operator set: compared before and after.
func config(peers []wgtypes.Peer) []wgtypes.Peer {
	var out []wgtypes.Peer
	for _, p := range peers {
		out = append(out, wgtypes.Peer{PublicKey: p.PublicKey, PresharedKey: p.PresharedKey, AllowedIPs: p.AllowedIPs, PersistentKeepaliveInterval: p.PersistentKeepaliveInterval})
	}
	slices.SortFunc(out, func(a, b wgtypes.Peer) int { return strings.Compare(a.PublicKey.String(), b.PublicKey.String()) })
	return out
}

func TestStartLeavesTheConfiguration(t *testing.T) {
	psk, _ := wgtypes.GenerateKey()
	peers := []wgtypes.Peer{
		{PublicKey: key(t), PresharedKey: psk, PersistentKeepaliveInterval: 25 * time.Second, AllowedIPs: []net.IPNet{ipnet("100.64.0.2/32"), ipnet("10.1.0.0/24")}, LastHandshakeTime: now.Add(-time.Minute)},
		{PublicKey: key(t), AllowedIPs: []net.IPNet{ipnet("100.64.0.3/32")}},
		{PublicKey: key(t), PersistentKeepaliveInterval: time.Second, AllowedIPs: []net.IPNet{ipnet("100.64.0.4/32")}, LastHandshakeTime: now.Add(-10 * time.Minute)},
	}
	for i := range peers {
		f := &fakeDevice{peers: slices.Clone(peers)}
		before := config(f.peers)
		r, err := New(f).Start(context.Background(), "wg0", peers[i].PublicKey, ep, now)
		if err != nil {
			t.Fatalf("peer %d: %v", i, err)
		}
		if diff := cmp.Diff(before, config(f.peers)); diff != "" {
			t.Errorf("peer %d (%s): configuration changed (-before +after):\n%s", i, r.Method, diff)
		}
		got := f.peers[slices.IndexFunc(f.peers, func(p wgtypes.Peer) bool { return p.PublicKey == peers[i].PublicKey })]
		if got.Endpoint == nil || got.Endpoint.AddrPort() != ep {
			t.Errorf("peer %d: endpoint %v, want %s", i, got.Endpoint, ep)
		}
	}
}

func TestStartRestoresAfterAFailedReadd(t *testing.T) {
	p := wgtypes.Peer{PublicKey: key(t), PersistentKeepaliveInterval: 25 * time.Second, AllowedIPs: []net.IPNet{ipnet("100.64.0.2/32")}, LastHandshakeTime: now.Add(-time.Second)}
	f := &fakeDevice{peers: []wgtypes.Peer{p}, fail: 2} // the re-add fails after the removal
	_, err := New(f).Start(context.Background(), "wg0", p.PublicKey, ep, now)
	if err == nil || !strings.Contains(err.Error(), "readd") {
		t.Fatalf("Start = %v, want the re-add's error", err)
	}
	if diff := cmp.Diff(config([]wgtypes.Peer{p}), config(f.peers)); diff != "" {
		t.Errorf("peer not restored (-want +got):\n%s", diff)
	}
}

func TestStartUnknownPeer(t *testing.T) {
	f := &fakeDevice{}
	if _, err := New(f).Start(context.Background(), "wg0", key(t), ep, now); !errors.Is(err, ErrNoPeer) {
		t.Errorf("Start = %v, want ErrNoPeer", err)
	}
	if len(f.calls) != 0 {
		t.Errorf("calls = %v, want none", f.calls)
	}
}

func TestStartHungDevice(t *testing.T) {
	f := &fakeDevice{block: make(chan struct{})}
	tk := New(f)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := tk.Start(ctx, "wg0", key(t), ep, now); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Start = %v, want the deadline", err)
	}
	if _, err := tk.Start(context.Background(), "wg0", key(t), ep, now); !errors.Is(err, ErrInFlight) {
		t.Errorf("second Start = %v, want ErrInFlight", err)
	}
	close(f.block)
}
