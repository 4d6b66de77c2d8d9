//go:build integration

package takeover

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/wgtest"
)

// These tests take over peers of a real device (kernel WireGuard when the
// module is there, as in make kernel-test's guest, wireguard-go
// otherwise), judged by what the device reads back and by the packets the
// other side receives. Namespaces and devices carry the prefix wgk.

const (
	srvName = "wgktos0"
	cliName = "wgktoc0"
	srvPort = 51820
	cliPort = 51821
)

type pair struct {
	ns       *wgtest.NS
	srv, cli *wgtest.Device
	wgc      *wgctrl.Client
	srvKey   wgtypes.Key
	cliKey   wgtypes.Key
	other    wgtypes.Key // a second peer on the server, never touched
}

func genKey(t *testing.T) wgtypes.Key {
	t.Helper()
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func prefix(s string) net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return *n
}

// newPair builds a server and a client device in one namespace, talking
// over the loopback. The server's peer for the client has a preshared key,
// two allowed IPs, keepalive ka and an endpoint; the client's knows the
// server's endpoint.
func newPair(t *testing.T, ka time.Duration) *pair {
	t.Helper()
	wgtest.Require(t, "wireguard-go")
	p := &pair{ns: wgtest.NewNS(t, "wgk-to"), srvKey: genKey(t), cliKey: genKey(t), other: genKey(t).PublicKey()}
	p.srv = wgtest.NewDevice(t, p.ns, srvName)
	p.cli = wgtest.NewDevice(t, p.ns, cliName)
	t.Logf("devices: %s", p.srv.Kind())
	p.wgc = p.srv.Client(t)
	psk := genKey(t)
	sp, cp := srvPort, cliPort
	if err := p.wgc.ConfigureDevice(srvName, wgtypes.Config{PrivateKey: &p.srvKey, ListenPort: &sp, Peers: []wgtypes.PeerConfig{
		{PublicKey: p.cliKey.PublicKey(), PresharedKey: &psk, PersistentKeepaliveInterval: &ka,
			Endpoint:   &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: cliPort},
			AllowedIPs: []net.IPNet{prefix("100.64.0.2/32"), prefix("fd64::2/128")}},
		{PublicKey: p.other, AllowedIPs: []net.IPNet{prefix("100.64.0.3/32")}},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := p.wgc.ConfigureDevice(cliName, wgtypes.Config{PrivateKey: &p.cliKey, ListenPort: &cp, Peers: []wgtypes.PeerConfig{
		{PublicKey: p.srvKey.PublicKey(), PresharedKey: &psk,
			Endpoint:   &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: srvPort},
			AllowedIPs: []net.IPNet{prefix("100.64.0.1/32")}},
	}}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{srvName, cliName} {
		p.ns.Exec(t, "ip", "link", "set", d, "up")
	}
	return p
}

func (p *pair) device(t *testing.T, name string) *wgtypes.Device {
	t.Helper()
	d, err := p.wgc.Device(name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// configured is what an operator set on a peer: everything but the
// counters, the handshake time and (roaming) the endpoint.
type configured struct {
	PublicKey  wgtypes.Key
	PSK        wgtypes.Key
	Keepalive  time.Duration
	AllowedIPs []string
}

func configuration(d *wgtypes.Device) []configured {
	var out []configured
	for _, pe := range d.Peers {
		c := configured{PublicKey: pe.PublicKey, PSK: pe.PresharedKey, Keepalive: pe.PersistentKeepaliveInterval}
		for _, a := range pe.AllowedIPs {
			c.AllowedIPs = append(c.AllowedIPs, a.String())
		}
		slices.Sort(c.AllowedIPs)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b configured) int { return slices.Compare(a.PublicKey[:], b.PublicKey[:]) })
	return out
}

// peer returns the peer key of device name.
func (p *pair) peer(t *testing.T, name string, key wgtypes.Key) wgtypes.Peer {
	t.Helper()
	ps := p.device(t, name).Peers
	i := slices.IndexFunc(ps, func(pe wgtypes.Peer) bool { return pe.PublicKey == key })
	if i < 0 {
		t.Fatalf("%s has no peer %s", name, key)
	}
	return ps[i]
}

func (p *pair) cliHandshake(t *testing.T) time.Time {
	t.Helper()
	return p.device(t, cliName).Peers[0].LastHandshakeTime
}

// waitHandshake waits until the client's handshake with the server is
// newer than after.
func (p *pair) waitHandshake(t *testing.T, what string, after time.Time) time.Time {
	t.Helper()
	var hs time.Time
	if err := wgtest.Wait(context.Background(), 10*time.Second, func() bool {
		hs = p.cliHandshake(t)
		return hs.After(after)
	}); err != nil {
		t.Fatalf("%s: no new handshake within 10s (last %v)", what, hs)
	}
	return hs
}

var clientEndpoint = netip.MustParseAddrPort("127.0.0.1:51821")

// A peer without a session: the keepalive is kicked, the client sees a
// handshake, and the device ends as configured, for a configured
// keepalive and for none.
func TestTakeoverKeepaliveLeavesTheConfiguration(t *testing.T) {
	for _, ka := range []time.Duration{0, 25 * time.Second} {
		t.Run("keepalive "+ka.String(), func(t *testing.T) {
			p := newPair(t, ka)
			before := configuration(p.device(t, srvName))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res, err := New(p.wgc).Start(ctx, srvName, p.cliKey.PublicKey(), clientEndpoint, time.Now())
			if err != nil || res.Method != Keepalive {
				t.Fatalf("Start = %+v, %v; want method keepalive", res, err)
			}
			t.Logf("takeover %s in %v", res.Method, res.Took)
			p.waitHandshake(t, "keepalive takeover", time.Time{})
			after := p.device(t, srvName)
			if diff := cmp.Diff(before, configuration(after), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("server configuration after the takeover (-before +after):\n%s", diff)
			}
		})
	}
}

// A peer that holds a session is removed and added again: the client
// completes a new handshake, and the peer has its preshared key, allowed
// IPs and keepalive back.
func TestTakeoverReaddLeavesTheConfiguration(t *testing.T) {
	p := newPair(t, 0)
	one := time.Second
	// The client starts a session (its keepalive 0 -> 1 s), then stops
	// sending keepalives.
	if err := p.wgc.ConfigureDevice(cliName, wgtypes.Config{Peers: []wgtypes.PeerConfig{{PublicKey: p.srvKey.PublicKey(), UpdateOnly: true, PersistentKeepaliveInterval: &one}}}); err != nil {
		t.Fatal(err)
	}
	first := p.waitHandshake(t, "the client's own handshake", time.Time{})
	// The server, the responder, counts the handshake once the client's
	// first packet on the new session arrives.
	if err := wgtest.Wait(context.Background(), 10*time.Second, func() bool {
		return !p.peer(t, srvName, p.cliKey.PublicKey()).LastHandshakeTime.IsZero()
	}); err != nil {
		t.Fatal("the server never counted the client's handshake")
	}
	zero := time.Duration(0)
	if err := p.wgc.ConfigureDevice(cliName, wgtypes.Config{Peers: []wgtypes.PeerConfig{{PublicKey: p.srvKey.PublicKey(), UpdateOnly: true, PersistentKeepaliveInterval: &zero}}}); err != nil {
		t.Fatal(err)
	}
	before := configuration(p.device(t, srvName))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := New(p.wgc).Start(ctx, srvName, p.cliKey.PublicKey(), clientEndpoint, time.Now())
	if err != nil || res.Method != Readd {
		t.Fatalf("Start = %+v, %v; want method readd", res, err)
	}
	t.Logf("takeover %s in %v", res.Method, res.Took)
	// A handshake second counts: the first one must be at least a
	// second older for the client's handshake time to move.
	p.waitHandshake(t, "readd takeover", first)
	if diff := cmp.Diff(before, configuration(p.device(t, srvName)), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("server configuration after the takeover (-before +after):\n%s", diff)
	}
	if ep := p.peer(t, srvName, p.cliKey.PublicKey()).Endpoint; ep == nil || ep.String() != clientEndpoint.String() {
		t.Errorf("re-added peer's endpoint = %v, want %v", ep, clientEndpoint)
	}
}
