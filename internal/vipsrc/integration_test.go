//go:build integration

package vipsrc

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/wgtest"
)

// The judge is the client: a plain UDP socket at the peer's endpoint
// receives the server's handshake initiation, and its source address is
// what the client (or the home router's conntrack) would see.

const (
	srvNS  = "wgc-vs-s"
	cliNS  = "wgc-vs-c"
	wgName = "wgcvs0"
	port   = 51820
)

var (
	srvUnicast4 = netip.MustParseAddr("10.9.0.1")
	srvUnicast6 = netip.MustParseAddr("fd09::1")
	cli4        = netip.MustParseAddrPort("10.9.0.2:40000")
	cli6        = netip.MustParseAddrPort("[fd09::2]:40000")
)

type rig struct {
	srv, cli *wgtest.NS
	dev      *wgtest.Device
	wg       interface {
		ConfigureDevice(string, wgtypes.Config) error
	}
	nl     *netlink.Handle
	socks  map[netip.Addr]*net.UDPConn
	peer   wgtypes.Key
	server wgtypes.Key
}

func newRig(t *testing.T) *rig {
	t.Helper()
	wgtest.Require(t, "wireguard-go")
	r := &rig{srv: wgtest.NewNS(t, srvNS), cli: wgtest.NewNS(t, cliNS), socks: map[netip.Addr]*net.UDPConn{}}
	wgtest.Veth(t, r.srv, []string{"10.9.0.1/24", "fd09::1/64"}, r.cli, []string{"10.9.0.2/24", "fd09::2/64"}, "eth0")
	r.dev = wgtest.NewDevice(t, r.srv, wgName)
	t.Logf("device: %s", r.dev.Kind())
	r.wg = r.dev.Client(t)
	var err error
	if r.server, err = wgtypes.GeneratePrivateKey(); err != nil {
		t.Fatal(err)
	}
	peer, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	r.peer = peer.PublicKey()
	p := port
	if err := r.wg.ConfigureDevice(wgName, wgtypes.Config{PrivateKey: &r.server, ListenPort: &p}); err != nil {
		t.Fatal(err)
	}
	r.srv.Exec(t, "ip", "addr", "add", "192.168.20.1/24", "dev", wgName)
	r.srv.Exec(t, "ip", "addr", "add", "fd00::1/64", "dev", wgName, "nodad")
	r.srv.Exec(t, "ip", "link", "set", wgName, "up")
	if r.nl, err = netlink.NewHandleAt(r.srv.Handle); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.nl.Close)
	for _, ap := range []netip.AddrPort{cli4, cli6} {
		if err := r.cli.Do(func() error {
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
			r.socks[ap.Addr()] = c
			return err
		}); err != nil {
			t.Fatalf("listening on %s: %v", ap, err)
		}
		t.Cleanup(func() { r.socks[ap.Addr()].Close() })
	}
	return r
}

// handshakeSource makes the server start a handshake to the client at ep
// as a takeover does (the peer added afresh with the endpoint, then its
// keepalive turned on) and returns the source of the initiation.
func (r *rig) handshakeSource(t *testing.T, ep netip.AddrPort) netip.AddrPort {
	t.Helper()
	if err := r.wg.ConfigureDevice(wgName, wgtypes.Config{Peers: []wgtypes.PeerConfig{{PublicKey: r.peer, Remove: true}}}); err != nil {
		t.Fatal(err)
	}
	one := time.Second
	_, allowed, _ := net.ParseCIDR("100.64.0.2/32")
	if err := r.wg.ConfigureDevice(wgName, wgtypes.Config{Peers: []wgtypes.PeerConfig{{
		PublicKey: r.peer, Endpoint: net.UDPAddrFromAddrPort(ep), AllowedIPs: []net.IPNet{*allowed},
		PersistentKeepaliveInterval: &one,
	}}}); err != nil {
		t.Fatal(err)
	}
	c := r.socks[ep.Addr()]
	buf := make([]byte, 2048)
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("no handshake initiation at %s: %v", ep, err)
		}
		if n == 148 && buf[0] == 1 {
			return netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		}
	}
}

func TestHandshakesLeaveFromTheVIP(t *testing.T) {
	r := newRig(t)
	cfg := Config{Port: port, VIP4: vip4, VIP6: vip6}

	// Without the set-up the kernel picks the unicast address: the test
	// can fail.
	if got := r.handshakeSource(t, cli4); got.Addr() != srvUnicast4 || got.Port() != port {
		t.Fatalf("without vipsrc the initiation came from %s, want %s:%d (test set-up)", got, srvUnicast4, port)
	}
	if got := r.handshakeSource(t, cli6); got.Addr() != srvUnicast6 {
		t.Fatalf("without vipsrc the initiation came from %s, want %s (test set-up)", got, srvUnicast6)
	}

	st, err := Sync(r.nl, cfg)
	if err != nil || !st.InPlace() {
		t.Fatalf("Sync: %+v, %v", st, err)
	}
	t.Logf("in place: %s", st.Detail())
	for _, c := range []struct {
		ep   netip.AddrPort
		want netip.Addr
	}{{cli4, vip4}, {cli6, vip6}} {
		if got := r.handshakeSource(t, c.ep); got.Addr() != c.want || got.Port() != port {
			t.Errorf("initiation to %s came from %s, want %s:%d", c.ep, got, c.want, port)
		}
		var src netip.Addr
		if err := r.srv.Do(func() (err error) { src, err = Source(c.ep, port); return err }); err != nil || src != c.want {
			t.Errorf("Source(%s) = %v, %v; want %v", c.ep, src, err, c.want)
		}
	}
	// Other traffic keeps its source.
	var other netip.Addr
	if err := r.srv.Do(func() (err error) { other, err = Source(cli4, port+1); return err }); err != nil || other != srvUnicast4 {
		t.Errorf("Source from another port = %v, %v; want %v", other, err, srvUnicast4)
	}

	if err := Remove(r.nl, cfg); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if got := r.handshakeSource(t, cli4); got.Addr() != srvUnicast4 {
		t.Errorf("after Remove the initiation came from %s, want %s", got, srvUnicast4)
	}
	rules, _ := r.nl.RuleList(netlink.FAMILY_ALL)
	for _, ru := range rules {
		if ru.Priority == DefaultPriority {
			t.Errorf("rule left after Remove: %+v", ru)
		}
	}
	routes, _ := r.nl.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: DefaultTable}, netlink.RT_FILTER_TABLE)
	if len(routes) != 0 {
		t.Errorf("routes left after Remove: %v", routes)
	}
}

// The kernel removes the mirror with the VIP; the Keeper puts it back
// when the VIP returns, and follows a new route in main.
func TestKeeperRestoresAfterVIPReturns(t *testing.T) {
	r := newRig(t)
	cfg := Config{Port: port, VIP4: vip4}
	k := NewKeeper(r.nl, cfg, slog.Default())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.srv.Do(func() error { k.Run(ctx); return nil })
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = Remove(r.nl, cfg)
	})
	inPlace := func() bool { return k.State().InPlace() }
	if err := wgtest.Wait(ctx, 2*time.Second, inPlace); err != nil {
		t.Fatalf("not in place at start: %+v", k.State())
	}

	r.srv.Exec(t, "ip", "addr", "del", "192.168.20.1/24", "dev", wgName)
	if err := wgtest.Wait(ctx, 2*time.Second, func() bool { return !inPlace() }); err != nil {
		t.Fatalf("still in place without the VIP: %+v", k.State())
	}
	t.Logf("without the VIP: %s", k.State().Detail())
	r.srv.Exec(t, "ip", "addr", "add", "192.168.20.1/24", "dev", wgName)
	start := time.Now()
	if err := wgtest.Wait(ctx, 2*time.Second, inPlace); err != nil {
		t.Fatalf("not back in place after the VIP returned: %+v", k.State())
	}
	t.Logf("back in place %v after the VIP returned", time.Since(start).Round(time.Millisecond))
	if got := r.handshakeSource(t, cli4); got.Addr() != vip4 {
		t.Errorf("initiation came from %s, want %s", got, vip4)
	}

	// A new route in main is mirrored.
	r.srv.Exec(t, "ip", "route", "add", "198.51.100.0/24", "via", "10.9.0.2")
	dst := netip.MustParseAddrPort("198.51.100.7:1")
	if err := wgtest.Wait(ctx, 2*time.Second, func() bool {
		var src netip.Addr
		_ = r.srv.Do(func() (err error) { src, err = Source(dst, port); return err })
		return src == vip4
	}); err != nil {
		t.Errorf("a route added to main was not mirrored: %+v", k.State())
	}
}
