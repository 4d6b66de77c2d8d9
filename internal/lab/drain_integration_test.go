//go:build integration

package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wgbird/wgbird/internal/api"
	"github.com/wgbird/wgbird/internal/control"
	"github.com/wgbird/wgbird/internal/labjudge"
	"github.com/wgbird/wgbird/internal/labtest"
)

// The drain tests run in a lab of their own (prefix wgbd), so that the
// drains, restarts and client re-pointing they do never leak into the
// shared lab's tests.
const (
	drainLabDir    = "/run/wgbd-itest"
	drainLabPrefix = "wgbd"
)

func drainLab(t *testing.T) *Lab {
	t.Helper()
	if !wgbirdHasCommand(t, "drain") {
		t.Fatal("the wgbird built from this tree has no drain command")
	}
	ctx := context.Background()
	start := time.Now()
	l, err := Up(ctx, Config{Dir: drainLabDir, Prefix: drainLabPrefix, Wgbird: labtest.Wgbird(t), Thresholds: testThresholds, Log: labtest.Logger()})
	if err != nil {
		t.Fatalf("bringing the drain lab up: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	t.Logf("drain lab up in %s", time.Since(start).Round(time.Millisecond))
	return l
}

// drainStatus returns server's wgbird status of its one service.
func drainStatus(t *testing.T, l *Lab, server string) api.ServiceStatus {
	t.Helper()
	raw, err := l.WgbirdStatus(context.Background(), server)
	if err != nil {
		t.Fatalf("%v\n%s", err, l.logs())
	}
	var st api.StatusReply
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatalf("status of %s: %v", server, err)
	}
	if len(st.Services) != 1 {
		t.Fatalf("status of %s: %d services", server, len(st.Services))
	}
	return st.Services[0]
}

// wgbirdCmd runs the lab's wgbird binary against server's control socket
// and returns its exit code and output.
func wgbirdCmd(t *testing.T, l *Lab, server string, timeout time.Duration, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	argv := append([]string{args[0], "--socket", l.ControlSocket(server)}, args[1:]...)
	cmd := exec.CommandContext(ctx, labtest.Wgbird(t), argv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("wgbird %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// pinger pings through the client's tunnel every 200 ms until stopped, so
// the tunnel carries data (not only keepalives): a client whose server
// stops answering data re-handshakes, with whichever server routing picks.
func pinger(l *Lab) (stop func() (sent, answered int)) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var sent, answered int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			sent++
			at := time.Now()
			if _, err := l.PingTunnel(200 * time.Millisecond); err == nil {
				answered++
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Until(at.Add(200 * time.Millisecond))):
			}
		}
	}()
	return func() (int, int) {
		cancel()
		wg.Wait()
		return sent, answered
	}
}

func TestDrain(t *testing.T) {
	l := drainLab(t)
	th := testThresholds.Effective()
	ctx := context.Background()

	t.Run("drain withdraws, survives a wgbird restart, undrain returns after rise", func(t *testing.T) {
		ready(t, l)
		s, keep := Servers[0], Servers[1]
		w := watch(t, l)
		t0 := time.Now()
		if code, _, stderr := wgbirdCmd(t, l, s.Name, 10*time.Second, "drain", "--reason", "itest maintenance"); code != 0 {
			t.Fatalf("drain: exit %d: %s", code, stderr)
		}
		c := waitFor(t, w, t0, 10*time.Second, s.Name+" withdrawn by the drain", labjudge.Lacks(s.Addr))
		t.Logf("drain: %s's nexthop gone %d ms after the command", s.Name, c.At.Sub(t0).Milliseconds())
		st := drainStatus(t, l, s.Name)
		if st.Drain == nil || st.Drain.Reason != "itest maintenance" || st.Drain.Persist || st.State != "withdrawn" {
			t.Errorf("status after drain: state %q, drain %+v", st.State, st.Drain)
		}

		// A wgbird restart (crash and start) keeps the drain: it is read
		// back from runtime_dir before the first check.
		if err := l.KillWgbird(ctx, s.Name); err != nil {
			t.Fatal(err)
		}
		if err := l.StartWgbird(ctx, s.Name); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(th.Rise+2) * th.Interval)
		if bad := w.Always(c.At, time.Now(), labjudge.Lacks(s.Addr)); bad != nil {
			t.Fatalf("%s came back across the wgbird restart: %v\n%s", s.Name, bad, l.logs())
		}
		if st := drainStatus(t, l, s.Name); st.Drain == nil || st.Drain.Reason != "itest maintenance" {
			t.Errorf("drain lost across the restart: %+v", st.Drain)
		}

		tu := time.Now()
		if code, stdout, stderr := wgbirdCmd(t, l, s.Name, 10*time.Second, "undrain"); code != 0 {
			t.Fatalf("undrain: exit %d: %s%s", code, stdout, stderr)
		}
		back := waitFor(t, w, tu, 20*time.Second, s.Name+" back after undrain", labjudge.Has(s.Addr))
		min := time.Duration(th.Rise-1)*th.Interval - th.Interval/10
		took := back.At.Sub(tu)
		t.Logf("undrain: nexthop back %d ms later (rise %d x %s: no earlier than %d ms)", took.Milliseconds(), th.Rise, th.Interval, min.Milliseconds())
		if took < min {
			t.Errorf("announced %s after undrain, before rise allows (%s)", took, min)
		}
		keptRoute(t, w, t0, keep)
		if st := drainStatus(t, l, s.Name); st.Drain != nil {
			t.Errorf("still drained after undrain: %+v", st.Drain)
		}
	})

	t.Run("persistent drain survives a reboot, a plain one does not", func(t *testing.T) {
		ready(t, l)
		s1, s2 := Servers[0], Servers[1]
		w := watch(t, l)
		t0 := time.Now()
		if code, _, stderr := wgbirdCmd(t, l, s1.Name, 10*time.Second, "drain", "--persist", "--reason", "kernel update"); code != 0 {
			t.Fatalf("drain --persist: exit %d: %s", code, stderr)
		}
		if code, _, stderr := wgbirdCmd(t, l, s2.Name, 10*time.Second, "drain", "--reason", "short"); code != 0 {
			t.Fatalf("drain: exit %d: %s", code, stderr)
		}
		waitFor(t, w, t0, 10*time.Second, "both withdrawn", labjudge.Exactly())

		// A reboot: wgbird gone, runtime_dir emptied (it is under /run).
		for _, s := range Servers {
			if err := l.KillWgbird(ctx, s.Name); err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(filepath.Join(l.Dir(), s.Name, "run")); err != nil {
				t.Fatal(err)
			}
			if err := l.StartWgbird(ctx, s.Name); err != nil {
				t.Fatal(err)
			}
		}
		tr := time.Now()
		c := waitFor(t, w, tr, 20*time.Second, s2.Name+" back after the reboot", labjudge.Exactly(s2.Addr))
		t.Logf("after the reboot: %s (plain drain) back in %d ms", s2.Name, c.At.Sub(tr).Milliseconds())
		time.Sleep(time.Duration(th.Rise+1) * th.Interval)
		if bad := w.Always(tr, time.Now(), labjudge.Lacks(s1.Addr)); bad != nil {
			t.Errorf("%s's persistent drain did not survive the reboot: %v", s1.Name, bad)
		}
		if st := drainStatus(t, l, s1.Name); st.Drain == nil || !st.Drain.Persist || st.Drain.Reason != "kernel update" {
			t.Errorf("%s status after reboot: %+v", s1.Name, st.Drain)
		}
		if st := drainStatus(t, l, s2.Name); st.Drain != nil {
			t.Errorf("%s still drained after reboot: %+v", s2.Name, st.Drain)
		}
		if code, _, stderr := wgbirdCmd(t, l, s1.Name, 10*time.Second, "undrain"); code != 0 {
			t.Fatalf("undrain: exit %d: %s", code, stderr)
		}
		if _, err := os.Stat(filepath.Join(l.Dir(), s1.Name, "state", "drains", "wg0.json")); !os.IsNotExist(err) {
			t.Errorf("persistent drain file left after undrain: %v", err)
		}
		waitFor(t, w, tr, 20*time.Second, "both back", All)
	})

	// drain --wait && reboot: once drain --wait returns, the client's
	// packets no longer reach the drained server, and when it goes down
	// the client's tunnel moves to the other server.
	//
	// The reboot matters: a drained server left running re-initiates the
	// handshake with each client that went silent on it, 15 s after its
	// last unanswered send and for up to 90 s. wireguard-go sends those
	// from the address routing picks (10.0.x.1 here), so the client roams
	// to it, past the router, and stays; from the VIP (kernel WireGuard),
	// they clobber the client's own handshakes with the other server. The
	// default quiet_period (10 s) ends before the first re-initiation.
	t.Run("drain --wait, then reboot: the client's tunnel moves", func(t *testing.T) {
		ready(t, l)
		// A fresh client endpoint: earlier subtests may have let it roam.
		if err := l.ensureWireGuard(ctx, "client"); err != nil {
			t.Fatal(err)
		}
		active, standby := tunnelServers(t, ctx, l)
		w := watch(t, l)
		stop := pinger(l)
		defer stop()

		t0 := time.Now()
		code, stdout, stderr := wgbirdCmd(t, l, active.Name, 2*time.Minute, "drain", "--wait", "--timeout", "90s", "--reason", "reboot")
		t.Logf("drain --wait: exit %d after %s\n%s%s", code, time.Since(t0).Round(time.Millisecond), stdout, stderr)
		if code != 0 {
			t.Fatalf("drain --wait: exit %d", code)
		}
		if !strings.Contains(stdout, "drained: BIRD has withdrawn wg0 and its WireGuard traffic has gone quiet") {
			t.Errorf("drain --wait did not say it is done")
		}
		gone := waitFor(t, w, t0, time.Second, active.Name+" withdrawn", labjudge.Lacks(active.Addr))
		c := control.NewClient(l.ControlSocket(active.Name), 5*time.Second)
		defer c.Close()
		peers, err := c.Peers(ctx, "wg0")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range peers.Peers {
			t.Logf("%s's peer %s..: rx %d, tx %d, last handshake %s", active.Name, p.PublicKey[:10], p.RxBytes, p.TxBytes, p.LastHandshake.Format(time.TimeOnly))
		}

		// The reboot: the drained server's WireGuard goes away.
		tr, err := l.Fail(ctx, active.Name, Kill)
		if err != nil {
			t.Fatal(err)
		}
		pctx, cancel := context.WithTimeout(ctx, 45*time.Second)
		defer cancel()
		back, err := l.PingTunnelUntil(pctx, 250*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("tunnel answers again %s after drain began, %s after the reboot", back.Sub(t0).Round(time.Millisecond), back.Sub(tr).Round(time.Millisecond))
		now, err := l.ActiveServer(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if now != standby.Name {
			t.Errorf("the tunnel now goes to %s, want %s", now, standby.Name)
		}
		if bad := w.Always(gone.At, time.Now(), labjudge.Exactly(standby.Addr)); bad != nil {
			t.Errorf("the router's nexthops changed after the drain: %v\nchanges: %v", bad, w.Changes())
		}
		sent, answered := stop()
		t.Logf("pings through the tunnel: %d sent, %d answered", sent, answered)
	})

	t.Run("drain --wait times out while a client keeps sending", func(t *testing.T) {
		ready(t, l)
		s := Servers[0]
		// Point the client straight at s's own address, past the router's
		// choice, with a fresh session: the drain cannot move it, and its
		// keepalives and pings keep s's counters moving.
		pub, err := l.wg(ctx, "client", "show", WGInterface, "public-key")
		if err != nil {
			t.Fatal(err)
		}
		peer, err := l.wg(ctx, "client", "show", WGInterface, "peers")
		if err != nil {
			t.Fatal(err)
		}
		peer = strings.TrimSpace(peer)
		defer func() {
			if err := l.ensureWireGuard(ctx, "client"); err != nil {
				t.Errorf("restoring the client: %v", err)
			}
		}()
		if _, err := l.wg(ctx, "client", "set", WGInterface, "peer", peer, "remove"); err != nil {
			t.Fatal(err)
		}
		if _, err := l.wg(ctx, "client", "set", WGInterface, "peer", peer, "endpoint", l.DirectEndpoint(s).String(),
			"allowed-ips", netipHost(TunnelServer), "persistent-keepalive", fmt.Sprint(KeepaliveSeconds)); err != nil {
			t.Fatal(err)
		}
		if err := l.WaitTunnel(ctx, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		if name, err := l.ActiveServer(ctx); err != nil || name != s.Name {
			t.Fatalf("the client's tunnel goes to %q (%v), want %s", name, err, s.Name)
		}
		stop := pinger(l)
		defer stop()

		code, stdout, stderr := wgbirdCmd(t, l, s.Name, time.Minute, "drain", "--wait", "--timeout", "15s")
		t.Logf("drain --wait: exit %d\n%s%s", code, stdout, stderr)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		for _, want := range []string{
			"wgbird drain: timed out after 15s waiting for the drain (it stays); still active: wg0: traffic quiet for 0s of 10s, 1 of 1 peers active: ",
			strings.TrimSpace(pub)[:10],
			"(" + l.ClientAddr("client").String() + ":",
		} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q", want)
			}
		}
		if st := drainStatus(t, l, s.Name); st.Drain == nil {
			t.Errorf("the drain did not stay after the timeout")
		}
	})
}
