package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/wgbird/wgbird/internal/lab"
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
	say("bird2 on the router (AS %d) and on both servers (AS %d), BGP with BFD (100 ms x 5)", lab.RouterAS, lab.ServerAS)
	say("wireguard-go wg0 on s1 and s2 with VIP %s, same key; wgbird on both (interval %s, rise %d, fall %d)", lab.VIP, th.Interval, th.Rise, th.Fall)
	if err := l.WaitRouted(ctx, 30*time.Second); err != nil {
		return err
	}
	say("up and routed in %s", time.Since(start).Round(100*time.Millisecond))

	step("The router's route to the VIP: ECMP over both servers")
	route, err := l.RouterRoute(ctx)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSpace(route), "\n") {
		say("%s", line)
	}

	step("The client's WireGuard tunnel (endpoint %s:%d)", lab.VIP.Addr(), lab.ListenPort)
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

	step("Hanging WireGuard on %s (SIGSTOP wireguard-go): BGP and BFD stay up, the tunnel is dead", active)
	w, err := l.Watch()
	if err != nil {
		return err
	}
	defer w.Close()
	t0, err := l.Fail(ctx, active, lab.Hang)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := w.WaitFor(wctx, t0, lab.Lacks(as.Addr))
	if err != nil {
		return err
	}
	say("wgbird's check of wg0 timed out %d times in a row (fall): it disabled %s", th.Fall, lab.Protocol)
	say("router: nexthop %s withdrawn %d ms after the hang; %s via %s", as.Addr, c.At.Sub(t0).Milliseconds(), lab.VIPPrefix, lab.FormatNexthops(c.Nexthops))
	if _, err := l.PingTunnelUntil(wctx, 250*time.Millisecond); err != nil {
		return err
	}
	say("client: tunnel answers again %.1f s after the hang, now through %s", time.Since(t0).Seconds(), other)
	say("(WireGuard re-handshakes once it has had no answer for 15 s; %s holds the same key and answers)", other)

	step("Healing %s (SIGCONT wireguard-go)", active)
	h := time.Now()
	if err := l.Heal(ctx, active); err != nil {
		return err
	}
	c, err = w.WaitFor(wctx, h, lab.Has(as.Addr))
	if err != nil {
		return err
	}
	say("router: nexthop %s back %.1f s after the heal (wgbird waits for %d healthy checks, %s apart)", as.Addr, c.At.Sub(h).Seconds(), th.Rise, th.Interval)
	say("%s via %s; %s's nexthop %s never left", lab.VIPPrefix, lab.FormatNexthops(c.Nexthops), other, os.Addr)
	if bad := w.Always(t0, time.Time{}, lab.Has(os.Addr)); bad != nil {
		say("(it did: %s)", bad)
	}
	return nil
}
