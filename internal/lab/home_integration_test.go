//go:build integration

package lab

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wgbird/wgbird/internal/labjudge"
	"github.com/wgbird/wgbird/internal/labproc"
	"github.com/wgbird/wgbird/internal/labtest"
)

// TestHomeNetwork checks the lab's home network (issue 18) in a lab of its
// own (prefix wgh) with three servers, a second client and an idle one:
// the router port-forwards its public address to the VIP and nothing
// else comes in, the clients land where Up placed them and keep the
// router's public address as their endpoint, and the NAT facts README
// states hold: a server's packet from its own address reaches a client
// from another port of the router (a new mapping the client then
// follows), and once an idle client's mapping is gone a handshake from
// the server still reaches it, through a new mapping on the same public
// port.
func TestHomeNetwork(t *testing.T) {
	labtest.Wgbird(t)
	ctx := context.Background()
	start := time.Now()
	// NoTakeover: these are facts of the NAT itself, measured with the
	// servers' own handshakes; wgbird's VIP-sourcing would change them.
	l, err := Up(ctx, Config{Dir: "/run/wgh-itest", Prefix: "wgh", Wgbird: labtest.Wgbird(t), Thresholds: testThresholds, Log: labtest.Logger(),
		ServerCount: 3, SecondClient: true, IdleClient: true, NoTakeover: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	if err := l.WaitRouted(ctx, 30*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, l.logs())
	}
	for _, c := range l.Clients() {
		if err := l.WaitClient(ctx, c.Name, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("lab with 3 servers and 3 clients up, routed and answering in %s", time.Since(start).Round(time.Millisecond))

	t.Run("placement, endpoints and the port forward", func(t *testing.T) {
		homes := map[string]bool{}
		for _, c := range l.Clients() {
			home, err := l.HomeServer(c.Name)
			if err != nil {
				t.Fatal(err)
			}
			routed, err := l.RoutedServer(c.Name)
			if err != nil {
				t.Fatal(err)
			}
			session, err := l.ServerOf(ctx, c.Name)
			if err != nil {
				t.Fatal(err)
			}
			if routed.Name != home.Name || session != home.Name {
				t.Errorf("%s: placed on %s, routed to %s, session with %s", c.Name, home.Name, routed.Name, session)
			}
			if !c.Idle {
				homes[home.Name] = true
			}
			if err := l.CheckEndpoint(ctx, c.Name); err != nil {
				t.Error(err)
			}
			// DNAT only: the server sees the client's own address.
			if got := serverEndpoint(t, l, home.Name, c.Name); got != netip.AddrPortFrom(l.ClientAddr(c.Name), uint16(c.Port)) {
				t.Errorf("%s sees %s at %s, want its own address and port", home.Name, c.Name, got)
			}
			t.Logf("%s %s: on %s, endpoint %s", c.Name, l.ClientAddr(c.Name), home.Name, l.Endpoint())
		}
		if len(homes) != 2 {
			t.Errorf("the two active clients share a server: %v", homes)
		}
		// Placed so that withdrawing the server without active clients
		// moves none of them.
		w := watch(t, l)
		free := freeServer(t, l)
		t0, err := l.Fail(ctx, free.Name, Drain)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, w, t0, 10*time.Second, free.Name+" withdrawn", labjudge.Lacks(free.Addr))
		for _, c := range l.Clients() {
			home, _ := l.HomeServer(c.Name)
			if now, err := l.RoutedServer(c.Name); err != nil || now.Name != home.Name {
				t.Errorf("with %s withdrawn the router sends %s to %s (%v), want %s", free.Name, c.Name, now.Name, err, home.Name)
			}
		}
		if err := l.Heal(ctx, free.Name); err != nil {
			t.Fatal(err)
		}
		if err := l.WaitRouted(ctx, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		// A home router lets in the forwarded ports and answers only.
		if _, err := labjudge.Ping(l.NS("client"), PublicAddr, time.Second); err != nil {
			t.Errorf("the router's public address does not answer: %v", err)
		}
		for _, dst := range []netip.Addr{VIP.Addr(), Servers[0].Addr} {
			if _, err := labjudge.Ping(l.NS("client"), dst, 300*time.Millisecond); err == nil {
				t.Errorf("the client reaches %s past the NAT", dst)
			}
		}
		p, err := l.StartPinger("client2", 0)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		echoes := p.Stop()
		if o := labjudge.LongestOutage(echoes, echoes[0].Sent, time.Time{}); o.Lost > 0 {
			t.Errorf("client2 lost %d of %d pings in a quiet second", o.Lost, len(echoes))
		}
	})

	t.Run("a server's own address is another mapping, which the client follows", func(t *testing.T) {
		// The server no active client is on sends a handshake to client
		// from its own address, as a server does whose endpoint was set by
		// hand.
		free := freeServer(t, l)
		c, _ := ClientByName("client")
		defer restorePeer(t, l, free.Name, c.Name)
		if err := serverHandshake(ctx, l, free.Name, c.Name); err != nil {
			t.Fatal(err)
		}
		var ep netip.AddrPort
		err := labproc.Poll(ctx, 5*time.Second, 50*time.Millisecond, "the client's endpoint to change", func() (bool, error) {
			var err error
			ep, err = l.ClientEndpoint(ctx, c.Name)
			return err == nil && ep != l.Endpoint(), err
		})
		if err != nil {
			t.Fatal(err)
		}
		if ep.Addr() != PublicAddr || ep.Port() == ListenPort {
			t.Errorf("client's endpoint became %s, want the router's address on another port than %d", ep, ListenPort)
		}
		ms, err := l.MappingsOf(c.Name)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, m := range ms {
			t.Logf("mapping: %s", m)
			if m.FromInside && m.Inside.Addr() == free.Addr && m.Public == ep {
				found = true
			}
		}
		if !found {
			t.Errorf("no mapping from %s to the client's new endpoint %s", free.Name, ep)
		}
		t.Logf("%s's packet from %s reached the client from %s: the client now sends there, to %s, off the VIP", free.Name, free.Addr, ep, free.Name)
	})

	t.Run("an idle client whose mapping is gone still gets the server's handshake", func(t *testing.T) {
		c, _ := ClientByName("idle")
		home, err := l.HomeServer(c.Name)
		if err != nil {
			t.Fatal(err)
		}
		ms, err := l.MappingsOf(c.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			t.Logf("idle client's mapping before: %s", m)
		}
		udp, stream := routerSysctl(t, l, "net.netfilter.nf_conntrack_udp_timeout"), routerSysctl(t, l, "net.netfilter.nf_conntrack_udp_timeout_stream")
		t.Logf("router: nf_conntrack_udp_timeout %s s, _stream %s s; idle keepalive %d s", udp, stream, c.Keepalive)
		for _, viaVIP := range []bool{true, false} {
			name := "from the VIP"
			if !viaVIP {
				name = "from " + home.Name + "'s own address"
			}
			// The mapping expires (here: is removed) before the next
			// keepalive; the server then starts a handshake.
			if err := l.ForgetMappings(c.Name); err != nil {
				t.Fatal(err)
			}
			before, err := l.ClientHandshake(ctx, c.Name)
			if err != nil {
				t.Fatal(err)
			}
			if viaVIP {
				if _, err := labproc.Run(ctx, "ip", "-n", l.NS(home.Name), "route", "replace", ClientNet.String(), "via", RouterAddr.Addr().String(), "src", VIP.Addr().String()); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(1100 * time.Millisecond) // handshake times have a 1 s resolution
			err = serverHandshake(ctx, l, home.Name, c.Name)
			if err == nil {
				err = labproc.Poll(ctx, 5*time.Second, 50*time.Millisecond, "the idle client's handshake", func() (bool, error) {
					hs, err := l.ClientHandshake(ctx, c.Name)
					return hs.After(before), err
				})
			}
			ep, eperr := l.ClientEndpoint(ctx, c.Name)
			ms, _ := l.MappingsOf(c.Name)
			if viaVIP {
				if _, rerr := labproc.Run(ctx, "ip", "-n", l.NS(home.Name), "route", "del", ClientNet.String()); rerr != nil {
					t.Error(rerr)
				}
			}
			restorePeer(t, l, home.Name, c.Name)
			if err != nil {
				t.Fatalf("handshake %s: %v", name, err)
			}
			if eperr != nil || ep != l.Endpoint() {
				t.Errorf("handshake %s: the idle client's endpoint is %s (%v), want %s", name, ep, eperr, l.Endpoint())
			}
			var inside netip.Addr
			for _, m := range ms {
				if m.FromInside && m.Public == l.Endpoint() {
					inside = m.Inside.Addr()
				}
			}
			want := VIP.Addr()
			if !viaVIP {
				want = home.Addr
			}
			if inside != want {
				t.Errorf("handshake %s: mappings %v, want one from %s on %s", name, ms, want, l.Endpoint())
			}
			t.Logf("handshake %s reached the idle client from %s; the router maps it to %s", name, ep, inside)
		}
	})
}

// freeServer returns the server no active client is placed on.
func freeServer(t *testing.T, l *Lab) Server {
	t.Helper()
	used := map[string]bool{}
	for _, c := range l.Clients() {
		if h, err := l.HomeServer(c.Name); err == nil && !c.Idle {
			used[h.Name] = true
		}
	}
	for _, s := range l.Servers() {
		if !used[s.Name] {
			return s
		}
	}
	t.Fatal("every server has an active client")
	return Server{}
}

// serverEndpoint returns server's endpoint for the client called name.
func serverEndpoint(t *testing.T, l *Lab, server, name string) netip.AddrPort {
	t.Helper()
	pub, err := l.publicKey(name)
	if err != nil {
		t.Fatal(err)
	}
	out, err := l.wg(context.Background(), server, "show", WGInterface, "endpoints")
	if err != nil {
		t.Fatal(err)
	}
	eps, err := labjudge.ParseEndpoints(out)
	if err != nil {
		t.Fatal(err)
	}
	return eps[pub]
}

// serverHandshake makes server start a handshake with the client called
// name, at the client's own address and port: the peer re-added with that
// endpoint and a keepalive (a new peer has no session, so its first
// keepalive starts one).
func serverHandshake(ctx context.Context, l *Lab, server, name string) error {
	c, err := ClientByName(name)
	if err != nil {
		return err
	}
	pub, err := l.publicKey(name)
	if err != nil {
		return err
	}
	if _, err := l.wg(ctx, server, "set", WGInterface, "peer", pub, "remove"); err != nil {
		return err
	}
	_, err = l.wg(ctx, server, "set", WGInterface, "peer", pub, "allowed-ips", netipHost(c.Tunnel),
		"endpoint", netip.AddrPortFrom(l.ClientAddr(name), uint16(c.Port)).String(), "persistent-keepalive", "1")
	return err
}

// restorePeer puts server's peer for the client called name back as
// configured (no endpoint, no keepalive) and reconnects the client.
func restorePeer(t *testing.T, l *Lab, server, name string) {
	t.Helper()
	ctx := context.Background()
	pub, err := l.publicKey(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.wg(ctx, server, "set", WGInterface, "peer", pub, "remove"); err != nil {
		t.Error(err)
	}
	if err := l.ensureWireGuard(ctx, server); err != nil {
		t.Error(err)
	}
	if err := l.Reconnect(ctx, name); err != nil {
		t.Error(err)
	}
	if err := l.WaitClient(ctx, name, 20*time.Second); err != nil {
		t.Error(err)
	}
}

func routerSysctl(t *testing.T, l *Lab, key string) string {
	t.Helper()
	out, err := labproc.InNS(context.Background(), l.NS("router"), "sysctl", "-n", key)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}
