//go:build integration

package takeover

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/wgtest"
)

// A server and a client, each with a real WireGuard device; the judge is
// the client's own device: a takeover must make it complete a new
// handshake, and the server's dump must show the operator's configuration
// unchanged, preshared keys included.
func TestTakeoverHandshakesAndLeavesTheConfiguration(t *testing.T) {
	wgtest.Require(t, "wireguard-go")
	srvNS, cliNS := wgtest.NewNS(t, "wgc-to-s"), wgtest.NewNS(t, "wgc-to-c")
	wgtest.Veth(t, srvNS, []string{"10.9.1.1/24"}, cliNS, []string{"10.9.1.2/24"}, "eth0")
	srv, cli := wgtest.NewDevice(t, srvNS, "wgcto0"), wgtest.NewDevice(t, cliNS, "wgcto1")
	t.Logf("server: %s, client: %s", srv.Kind(), cli.Kind())
	sc, cc := srv.Client(t), cli.Client(t)

	sk, _ := wgtypes.GeneratePrivateKey()
	ck, _ := wgtypes.GeneratePrivateKey()
	psk, _ := wgtypes.GenerateKey()
	other1, _ := wgtypes.GeneratePrivateKey()
	other2, _ := wgtypes.GeneratePrivateKey()
	sport, cport := 51820, 40000
	ka := 25 * time.Second
	ipn := func(s string) net.IPNet { _, n, _ := net.ParseCIDR(s); return *n }
	// The operator's configuration: the client with a preshared key, a
	// keepalive and two allowed IPs, and two other peers.
	if err := sc.ConfigureDevice("wgcto0", wgtypes.Config{PrivateKey: &sk, ListenPort: &sport, ReplacePeers: true, Peers: []wgtypes.PeerConfig{
		{PublicKey: ck.PublicKey(), PresharedKey: &psk, PersistentKeepaliveInterval: &ka, AllowedIPs: []net.IPNet{ipn("100.64.0.2/32"), ipn("10.50.0.0/24")}},
		{PublicKey: other1.PublicKey(), AllowedIPs: []net.IPNet{ipn("100.64.0.3/32")}},
		{PublicKey: other2.PublicKey(), PresharedKey: &psk, AllowedIPs: []net.IPNet{ipn("100.64.0.4/32")}},
	}}); err != nil {
		t.Fatal(err)
	}
	srvEP := net.UDPAddrFromAddrPort(netip.MustParseAddrPort("10.9.1.1:51820"))
	if err := cc.ConfigureDevice("wgcto1", wgtypes.Config{PrivateKey: &ck, ListenPort: &cport, Peers: []wgtypes.PeerConfig{
		{PublicKey: sk.PublicKey(), PresharedKey: &psk, Endpoint: srvEP, AllowedIPs: []net.IPNet{ipn("100.64.0.1/32")}},
	}}); err != nil {
		t.Fatal(err)
	}
	srvNS.Exec(t, "ip", "link", "set", "wgcto0", "up")
	cliNS.Exec(t, "ip", "link", "set", "wgcto1", "up")

	dump := func() []wgtypes.Peer {
		d, err := sc.Device("wgcto0")
		if err != nil {
			t.Fatal(err)
		}
		var out []wgtypes.Peer
		for _, p := range d.Peers {
			slices.SortFunc(p.AllowedIPs, func(a, b net.IPNet) int { return strings.Compare(a.String(), b.String()) })
			out = append(out, wgtypes.Peer{PublicKey: p.PublicKey, PresharedKey: p.PresharedKey, AllowedIPs: p.AllowedIPs, PersistentKeepaliveInterval: p.PersistentKeepaliveInterval})
		}
		slices.SortFunc(out, func(a, b wgtypes.Peer) int { return strings.Compare(a.PublicKey.String(), b.PublicKey.String()) })
		return out
	}
	clientHandshake := func() time.Time {
		d, err := cc.Device("wgcto1")
		if err != nil {
			t.Fatal(err)
		}
		return d.Peers[0].LastHandshakeTime
	}
	before := dump()
	tk := New(sc)
	ctx := context.Background()
	clientEP := netip.MustParseAddrPort("10.9.1.2:40000")

	// 1. No session yet: the keepalive toggle starts the handshake.
	r, err := tk.Start(ctx, "wgcto0", ck.PublicKey(), clientEP, time.Now())
	if err != nil || r.Method != Keepalive {
		t.Fatalf("first takeover: %+v, %v; want %s", r, err, Keepalive)
	}
	if err := wgtest.Wait(ctx, 3*time.Second, func() bool { return !clientHandshake().IsZero() }); err != nil {
		t.Fatal("the keepalive toggle started no handshake the client completed")
	}
	if diff := cmp.Diff(before, dump()); diff != "" {
		t.Errorf("after the keepalive toggle the configuration differs (-before +after):\n%s", diff)
	}

	// 2. The server holds a session: it must re-add the peer, or its
	// keepalive would go out on the old keys and start nothing.
	first := clientHandshake()
	time.Sleep(1100 * time.Millisecond) // UAPI reports handshake times in whole seconds
	r, err = tk.Start(ctx, "wgcto0", ck.PublicKey(), clientEP, time.Now())
	if err != nil || r.Method != Readd {
		t.Fatalf("second takeover: %+v, %v; want %s", r, err, Readd)
	}
	if err := wgtest.Wait(ctx, 3*time.Second, func() bool { return clientHandshake().After(first) }); err != nil {
		t.Fatal("re-adding the peer started no new handshake")
	}
	if diff := cmp.Diff(before, dump()); diff != "" {
		t.Errorf("after the re-add the configuration differs (-before +after):\n%s", diff)
	}
	t.Logf("took %s (%s), client handshakes %s then %s", r.Took, r.Method, first.Format(time.StampMilli), clientHandshake().Format(time.StampMilli))
}
