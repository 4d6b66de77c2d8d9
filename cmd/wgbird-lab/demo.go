package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/wgbird/wgbird/internal/lab"
	"github.com/wgbird/wgbird/internal/labjudge"
	"github.com/wgbird/wgbird/internal/labstatus"
)

// demo is `make demo`: up, failover, recovery, down. The lab is torn down
// however the demo ends, Ctrl-C included.
func demo(ctx context.Context, out io.Writer, cfg lab.Config) (err error) {
	step := func(format string, a ...any) { fmt.Fprintf(out, "\n== "+format+"\n", a...) }
	say := func(format string, a ...any) { fmt.Fprintf(out, "   "+format+"\n", a...) }
	th := cfg.Thresholds.Effective()
	l := lab.New(cfg)
	defer func() {
		step("Tearing the lab down")
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if derr := l.Down(dctx); derr != nil {
			say("down: %v", derr)
			if err == nil {
				err = derr
			}
			return
		}
		say("namespaces, processes and %s removed", l.Dir())
		if ctx.Err() != nil && err != nil {
			err = fmt.Errorf("interrupted: %w", err)
		}
	}()

	step("Bringing the lab up: router, s1, s2 and client in namespaces %s-*", l.Config().Prefix)
	start := time.Now()
	l, err = lab.Up(ctx, cfg)
	if err != nil {
		return err
	}
	if l.Config().Routing == lab.RoutingOSPF {
		say("bird2 on the router and on both servers, OSPF area 0 with BFD (100 ms x 5); the servers export the VIP prefix as an external route")
	} else {
		say("bird2 on the router (AS %d) and on both servers (AS %d), BGP with BFD (100 ms x 5)", lab.RouterAS, lab.ServerAS)
	}
	say("wireguard-go wg0 on s1 and s2 with VIP %s, same key; wgbird on both (interval %s, rise %d, fall %d)", lab.VIP, th.Interval, th.Rise, th.Fall)
	if err := l.WaitRouted(ctx, 30*time.Second); err != nil {
		return err
	}
	say("up and routed in %s", time.Since(start).Round(100*time.Millisecond))

	step("The router's route to the VIP: ECMP over both servers")
	route, err := labstatus.RouterRoute(ctx, l)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSpace(route), "\n") {
		say("%s", line)
	}

	step("The client's WireGuard tunnel (endpoint %s)", l.Endpoint())
	if !cfg.Routed {
		say("the router port-forwards its public address %s to the VIP %s:%d and masquerades the rest, as a home router does", l.Endpoint(), lab.VIP.Addr(), lab.ListenPort)
	}
	if err := l.WaitTunnel(ctx, 20*time.Second); err != nil {
		return err
	}
	rtt, err := l.PingTunnel(2 * time.Second)
	if err != nil {
		return err
	}
	active, err := l.ActiveServer(ctx)
	if err != nil {
		return err
	}
	other := "s1"
	if active == "s1" {
		other = "s2"
	}
	as, _ := lab.ServerByName(active)
	os, _ := lab.ServerByName(other)
	say("ping %s through the tunnel: reply in %s; the router's ECMP hash sends the client to %s", lab.TunnelServer.Addr(), rtt.Round(10*time.Microsecond), active)

	step("Hanging WireGuard on %s (SIGSTOP wireguard-go): %s and BFD stay up, the tunnel is dead", active, strings.ToUpper(string(l.Config().Routing)))
	w, err := l.Watch()
	if err != nil {
		return err
	}
	defer w.Close()
	p, err := l.StartPinger("client", labjudge.PingInterval)
	if err != nil {
		return err
	}
	defer p.Stop()
	say("the client pings %s through its tunnel every %s from now on", lab.TunnelServer.Addr(), labjudge.PingInterval)
	time.Sleep(time.Second)
	t0, err := l.Fail(ctx, active, lab.Hang)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := w.WaitFor(wctx, t0, labjudge.Lacks(as.Addr))
	if err != nil {
		return err
	}
	say("wgbird's check of wg0 timed out %d times in a row (fall): it disabled %s", th.Fall, lab.Protocol)
	say("router: nexthop %s withdrawn %d ms after the hang; %s via %s", as.Addr, c.At.Sub(t0).Milliseconds(), lab.VIPPrefix, labjudge.FormatNexthops(c.Nexthops))
	back, err := p.WaitAnswered(wctx, c.At)
	if err != nil {
		return err
	}
	o := labjudge.LongestOutage(p.Echoes(), t0, back.Sent.Add(time.Millisecond))
	say("client: tunnel answers again %.1f s after the hang (%s lost), now through %s", back.Sent.Sub(t0).Seconds(), plural(o.Lost, "ping"), other)
	if back.Sent.Sub(t0) > 5*time.Second {
		say("(WireGuard re-handshakes once it has had no answer for 15 s; %s holds the same key and answers)", other)
	} else {
		say("(%s started the handshake itself: the route moved and the client never waited for its 15 s timer)", other)
	}

	step("Healing %s (SIGCONT wireguard-go)", active)
	h := time.Now()
	if err := l.Heal(ctx, active); err != nil {
		return err
	}
	c, err = w.WaitFor(wctx, h, labjudge.Has(as.Addr))
	if err != nil {
		return err
	}
	say("router: nexthop %s back %.1f s after the heal (wgbird waits for %d healthy checks, %s apart)", as.Addr, c.At.Sub(h).Seconds(), th.Rise, th.Interval)
	say("%s via %s; %s's nexthop %s never left", lab.VIPPrefix, labjudge.FormatNexthops(c.Nexthops), other, os.Addr)
	if bad := w.Always(t0, time.Time{}, labjudge.Has(os.Addr)); bad != nil {
		say("(it did: %s)", bad)
	}
	time.Sleep(3 * time.Second)
	if open := labjudge.LongestOutage(p.Echoes(), h, time.Time{}); open.Lost > 0 && open.To.IsZero() {
		say("client: the tunnel stopped answering when %s came back; waiting for it (up to 25 s)", active)
		bctx, cancel := context.WithTimeout(ctx, 25*time.Second)
		_, err := p.WaitAnswered(bctx, time.Now())
		cancel()
		if err != nil {
			return err
		}
	}
	echoes := p.Stop()
	fb := labjudge.LongestOutage(echoes, h, time.Time{})
	if fb.Lost == 0 {
		say("client: no ping lost across the heal and for 3 s after %s came back", active)
	} else {
		say("client: %s lost after the heal: the tunnel was dead %.1f s", plural(fb.Lost, "ping"), fb.Duration().Seconds())
		if fb.Duration() > time.Second {
			say("(the client's flow hashed back to %s, which holds only its old session; the client's packets on the session with %s are dropped until a new handshake)", active, other)
		}
	}
	if ep, err := l.ClientEndpoint(ctx, "client"); err == nil {
		if ep == l.Endpoint() {
			say("client: its endpoint is still %s", ep)
		} else {
			say("client: its endpoint is now %s, not %s: pinned off the VIP", ep, l.Endpoint())
		}
	}
	return nil
}

// plural is "1 ping", "2 pings".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
