//go:build integration

package vipsrc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/rtnl"
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

// source asks the kernel in the server's namespace, through Source, which
// source a packet from port to ep would leave with.
func (r *rig) source(ep netip.AddrPort, port int, src *netip.Addr) error {
	return r.srv.Do(func() error {
		c, err := rtnl.Dial(2 * time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		*src, err = Source(c, ep, port)
		return err
	})
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
		if err := r.source(c.ep, port, &src); err != nil || src != c.want {
			t.Errorf("Source(%s) = %v, %v; want %v", c.ep, src, err, c.want)
		}
	}
	// Other traffic keeps its source.
	var other netip.Addr
	if err := r.source(cli4, port+1, &other); err != nil || other != srvUnicast4 {
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
		_ = r.source(dst, port, &src)
		return src == vip4
	}); err != nil {
		t.Errorf("a route added to main was not mirrored: %+v", k.State())
	}

	// A rule deleted by hand is back at once (a rule event: about 15 ms
	// here), not at the next resync, up to 30 s later on the clock grid.
	r.srv.Exec(t, "ip", "rule", "del", "pref", fmt.Sprint(DefaultPriority))
	start = time.Now()
	if err := wgtest.Wait(ctx, 500*time.Millisecond, func() bool {
		return strings.Contains(r.srv.Exec(t, "ip", "rule", "show", "pref", fmt.Sprint(DefaultPriority)), "lookup")
	}); err != nil {
		t.Errorf("the rule deleted by hand is not back within 500 ms: %+v", k.State())
	}
	t.Logf("rule back %v after it was deleted", time.Since(start).Round(time.Millisecond))
}

// initiation waits up to d for a handshake initiation at ep and returns its
// source; false when none came.
func (r *rig) initiation(t *testing.T, ep netip.AddrPort, d time.Duration) (netip.AddrPort, bool) {
	t.Helper()
	c := r.socks[ep.Addr()]
	buf := make([]byte, 2048)
	_ = c.SetReadDeadline(time.Now().Add(d))
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return netip.AddrPort{}, false
		}
		if n == 148 && buf[0] == 1 {
			return netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), true
		}
	}
}

// Without the VIP, WireGuard's unsourced packets are refused by the
// table's guard: no initiation leaves from the unicast address (which
// would pin the client there), and one comes from the VIP as soon as it
// is back. An IPv4 packet with a cached source (a peer that wrote to the
// unicast address) still leaves from it.
func TestNothingLeavesFromUnicastWithoutTheVIP(t *testing.T) {
	r := newRig(t)
	cfg := Config{Port: port, VIP4: vip4, VIP6: vip6}
	if st, err := Sync(r.nl, cfg); err != nil || !st.InPlace() {
		t.Fatalf("Sync: %+v, %v", st, err)
	}
	t.Cleanup(func() { _ = Remove(r.nl, cfg) })
	r.srv.Exec(t, "ip", "addr", "del", "192.168.20.1/24", "dev", wgName)
	r.srv.Exec(t, "ip", "addr", "del", "fd00::1/64", "dev", wgName)
	st, _ := Sync(r.nl, cfg)
	t.Logf("without the VIP: %s", st.Detail())
	for _, f := range st.Families {
		if !f.Guard || f.Routes != 0 {
			t.Errorf("%s without the VIP: %+v, want the guard alone", f.Family, f)
		}
	}
	for _, ep := range []netip.AddrPort{cli4, cli6} {
		// The same takeover as handshakeSource, then a wait for what
		// WireGuard sends: it retries, every packet refused.
		if err := r.wg.ConfigureDevice(wgName, wgtypes.Config{Peers: []wgtypes.PeerConfig{{PublicKey: r.peer, Remove: true}}}); err != nil {
			t.Fatal(err)
		}
		one := time.Second
		if err := r.wg.ConfigureDevice(wgName, wgtypes.Config{Peers: []wgtypes.PeerConfig{{
			PublicKey: r.peer, Endpoint: net.UDPAddrFromAddrPort(ep), PersistentKeepaliveInterval: &one,
		}}}); err != nil {
			t.Fatal(err)
		}
		if from, ok := r.initiation(t, ep, 2*time.Second); ok {
			t.Errorf("without the VIP an initiation reached %s from %s, want none", ep, from)
		}
		var src netip.Addr
		if err := r.source(ep, port, &src); err == nil {
			t.Errorf("Source(%s) without the VIP = %s, want no route", ep, src)
		}
	}

	// A cached IPv4 source is not the guard's business: a socket on
	// another port under the same set-up (a rule and table of their own)
	// sends with IP_PKTINFO from the unicast address.
	other := Config{Port: 40999, VIP4: vip4, Table: DefaultTable + 50, Priority: DefaultPriority + 50}
	if _, err := Sync(r.nl, other); err == nil {
		t.Fatal("Sync without the VIP: no error")
	}
	t.Cleanup(func() { _ = Remove(r.nl, other) })
	var sendErr, pktinfoErr error
	if err := r.srv.Do(func() error {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: other.Port})
		if err != nil {
			return err
		}
		defer c.Close()
		_, sendErr = c.WriteToUDPAddrPort([]byte("unsourced"), cli4)
		pc := ipv4.NewPacketConn(c)
		_, pktinfoErr = pc.WriteTo([]byte("cached"), &ipv4.ControlMessage{Src: net.IP(srvUnicast4.AsSlice())}, net.UDPAddrFromAddrPort(cli4))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(sendErr, unix.EHOSTUNREACH) {
		t.Errorf("unsourced send without the VIP: %v, want EHOSTUNREACH (the guard)", sendErr)
	}
	if pktinfoErr != nil {
		t.Errorf("send from the cached unicast source: %v, want it sent", pktinfoErr)
	}
	buf := make([]byte, 64)
	_ = r.socks[cli4.Addr()].SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		n, from, err := r.socks[cli4.Addr()].ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Errorf("the packet from the cached source did not arrive: %v", err)
			break
		}
		if string(buf[:n]) == "unsourced" {
			t.Errorf("the unsourced packet arrived from %s", from)
			continue
		}
		if string(buf[:n]) == "cached" {
			if from.Addr().Unmap() != srvUnicast4 || from.Port() != uint16(other.Port) {
				t.Errorf("the cached-source packet came from %s, want %s:%d", from, srvUnicast4, other.Port)
			}
			break
		}
	}

	// The VIP returns: the next initiation leaves from it.
	r.srv.Exec(t, "ip", "addr", "add", "192.168.20.1/24", "dev", wgName)
	if st, err := Sync(r.nl, cfg); err == nil || st.Families[0].Routes == 0 {
		// IPv6's VIP is still gone: the error is its.
		t.Logf("VIP4 back: %s (%v)", st.Detail(), err)
	}
	if got := r.handshakeSource(t, cli4); got.Addr() != vip4 || got.Port() != port {
		t.Errorf("with the VIP back the initiation came from %s, want %s:%d", got, vip4, port)
	}
}

// The events socket reports an address added and a route added in main
// as calling for a sync, and the Keeper's own route in its table as not.
func TestEvents(t *testing.T) {
	r := newRig(t)
	var ev *rtnl.Socket
	if err := r.srv.Do(func() (err error) { ev, err = rtnl.Open(eventGroups); return err }); err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	const table = 22338
	type datagram struct {
		types []uint16
		due   bool
	}
	results := make(chan datagram, 1024)
	go func() {
		for {
			msgs, err := ev.Read()
			if err != nil && !errors.Is(err, rtnl.ErrLost) {
				close(results)
				return
			}
			d := datagram{due: err != nil || needsSync(msgs, table)}
			for _, m := range msgs {
				d.types = append(d.types, m.Header.Type)
			}
			results <- d
		}
	}()
	// expectType waits for a datagram with a message of type typ judged
	// want; others are skipped (an address brings its own routes, the
	// kernel its own changes).
	expectType := func(what string, typ uint16, want bool) {
		t.Helper()
		timeout := time.After(2 * time.Second)
		for {
			select {
			case d := <-results:
				if d.due == want && slices.Contains(d.types, typ) {
					return
				}
			case <-timeout:
				t.Fatalf("%s: no datagram with a message of type %d judged %v in 2 s", what, typ, want)
			}
		}
	}

	r.srv.Exec(t, "ip", "route", "add", "198.51.100.0/24", "via", "10.9.0.2")
	expectType("a route added in main", unix.RTM_NEWROUTE, true)
	r.srv.Exec(t, "ip", "route", "add", "198.51.101.0/24", "via", "10.9.0.2", "table", fmt.Sprint(table), "proto", fmt.Sprint(Protocol))
	expectType("our own route added", unix.RTM_NEWROUTE, false)
	r.srv.Exec(t, "ip", "route", "del", "198.51.101.0/24", "table", fmt.Sprint(table))
	expectType("our own route deleted", unix.RTM_DELROUTE, true)
	r.srv.Exec(t, "ip", "addr", "add", "192.168.21.1/24", "dev", wgName)
	expectType("an address added", unix.RTM_NEWADDR, true)
	r.srv.Exec(t, "ip", "rule", "add", "pref", "1234", "lookup", fmt.Sprint(table))
	expectType("a rule added", unix.RTM_NEWRULE, true)
	r.srv.Exec(t, "ip", "-6", "rule", "add", "pref", "1234", "lookup", fmt.Sprint(table))
	expectType("an IPv6 rule added", unix.RTM_NEWRULE, true)
	r.srv.Exec(t, "ip", "rule", "del", "pref", "1234")
	expectType("a rule deleted", unix.RTM_DELRULE, true)
}
