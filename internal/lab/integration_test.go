//go:build integration

package lab

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wgbird/wgbird/internal/labjudge"
	"github.com/wgbird/wgbird/internal/labproc"
	"github.com/wgbird/wgbird/internal/labtest"
)

// The end-to-end tests run the seed post's topology with real bird2,
// wireguard-go and a wgbird built from this tree, and judge wgbird only by
// the router's kernel routing table.

var (
	// shared is the lab the wgbird tests share, brought up once.
	shared    *Lab
	sharedErr error
)

// testThresholds are wgbird's thresholds in the shared lab: a shorter
// interval than the default keeps the suite short, rise and fall stay at
// their defaults.
var testThresholds = Thresholds{Interval: 500 * time.Millisecond, Rise: 3, Fall: 2}

const sharedDir = "/run/wgbl-itest"

func TestMain(m *testing.M) {
	flag.Parse()
	missing := slices.DeleteFunc(Missing(), func(b string) bool { return kernelWireGuard && b == "wireguard-go" })
	os.Exit(labtest.Main(m, "lab integration tests", missing, func() error {
		var errs []error
		for _, l := range []*Lab{shared, faults, ospfLab} {
			if l == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := l.Down(ctx); err != nil {
				errs = append(errs, fmt.Errorf("tearing down the lab in %s: %w", l.Dir(), err))
			}
			cancel()
		}
		return errors.Join(errs...)
	}))
}

// wgbirdHasCommand reports whether the built wgbird knows a command (the
// control commands land after `run`).
func wgbirdHasCommand(t *testing.T, name string) bool {
	out, _ := exec.Command(labtest.Wgbird(t), name, "--help").CombinedOutput()
	return !strings.Contains(string(out), "unknown command")
}

// sharedLab returns the lab with wgbird that the tests share, healed and
// routed via both servers.
func sharedLab(t *testing.T) *Lab {
	t.Helper()
	l := upOnce(t, &shared, &sharedErr, "the lab", Config{Dir: sharedDir, Thresholds: testThresholds, Log: labtest.Logger(),
		KernelWireGuard: kernelWireGuard})
	ready(t, l)
	return l
}

// upOnce brings up the lab *l with cfg the first time a test asks, keeping
// it (or the error) for the tests after; TestMain tears it down.
func upOnce(t *testing.T, l **Lab, lerr *error, what string, cfg Config) *Lab {
	t.Helper()
	cfg.Wgbird = labtest.Wgbird(t)
	if *l == nil && *lerr == nil {
		start := time.Now()
		*l, *lerr = Up(context.Background(), cfg)
		if *lerr == nil {
			t.Logf("%s up in %s", what, time.Since(start).Round(time.Millisecond))
		}
	}
	if *lerr != nil {
		t.Fatalf("bringing %s up: %v", what, *lerr)
	}
	return *l
}

// ready heals both servers and waits for both nexthops.
func ready(t *testing.T, l *Lab) {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	for _, s := range l.Servers() {
		if err := l.Heal(ctx, s.Name); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.WaitRouted(ctx, 30*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, l.logs())
	}
	t.Logf("both servers routed (%s)", time.Since(start).Round(time.Millisecond))
}

// logs returns the ends of the wgbird logs, for failure messages.
func (l *Lab) logs() string {
	var b strings.Builder
	for _, s := range l.Servers() {
		fmt.Fprintf(&b, "--- %s wgbird.log:\n%s\n", s.Name, labproc.Tail(l.WgbirdLog(s.Name), 15))
	}
	return b.String()
}

func watch(t *testing.T, l *Lab) *labjudge.Watcher {
	t.Helper()
	w, err := l.Watch()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Err(); err != nil {
			t.Errorf("route watcher: %v", err)
		}
		w.Close()
	})
	return w
}

func waitFor(t *testing.T, w *labjudge.Watcher, since time.Time, timeout time.Duration, what string, ok func([]netip.Addr) bool) labjudge.Change {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := w.WaitFor(ctx, since, ok)
	if err != nil {
		t.Fatalf("%s: %v\nchanges: %v", what, err, w.Changes())
	}
	return c
}

func other(s Server) Server {
	if s.Name == "s1" {
		return Servers[1]
	}
	return Servers[0]
}

// checkConsistent compares the watcher's view with a fresh netlink read.
func checkConsistent(t *testing.T, l *Lab, w *labjudge.Watcher) {
	t.Helper()
	time.Sleep(50 * time.Millisecond)
	nh, err := l.Nexthops()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmpAddrs(nh, w.Current()); diff != "" {
		t.Errorf("watcher and netlink disagree (-read +watched): %s", diff)
	}
}

func cmpAddrs(a, b []netip.Addr) string {
	if slices.Equal(a, b) {
		return ""
	}
	return fmt.Sprintf("-%s +%s", labjudge.FormatNexthops(a), labjudge.FormatNexthops(b))
}

// TestLabLifecycle checks the lab itself, without wgbird: a leftover of a
// killed run does not break `up`, BGP gives ECMP once the static protocols
// are enabled, the tunnel carries traffic, a restarted BIRD comes back
// with its static protocol disabled, and `down` leaves nothing behind.
func TestLabLifecycle(t *testing.T) {
	labtest.RequireLab(t)
	ctx := context.Background()
	cfg := Config{Dir: "/run/wgblx-itest", Prefix: "wgblx", Log: labtest.Logger()}
	l := New(cfg)
	t.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("down: %v", err)
		}
	})

	// A killed run's leftovers: a namespace with a process in it and a
	// lab dir with stale files.
	if _, err := labproc.Run(ctx, "ip", "netns", "add", l.NS("s1")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "s1"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, markerFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := labproc.StartDaemon(labproc.Daemon{NS: l.NS("s1"), Argv: []string{"sleep", "600"}, PIDFile: filepath.Join(cfg.Dir, "s1", "sleep.pid"), LogFile: os.DevNull}); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	l, err := Up(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("up over a leftover lab: %s", time.Since(start).Round(time.Millisecond))

	for _, node := range append([]string{"router"}, serverNames(l.Servers())...) {
		if _, err := labproc.Run(ctx, "bird", "-p", "-c", l.path(node, "bird.conf")); err != nil {
			t.Errorf("bird.conf of %s does not parse: %v", node, err)
		}
	}

	w := watch(t, l)
	for _, s := range Servers {
		if _, err := l.birdc(ctx, s.Name, "enable", Protocol); err != nil {
			t.Fatal(err)
		}
	}
	c := waitFor(t, w, start, 30*time.Second, "ECMP via both servers", All)
	t.Logf("ECMP via both servers %s after up began", c.At.Sub(start).Round(time.Millisecond))
	checkConsistent(t, l, w)
	if err := l.WaitTunnel(ctx, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("tunnel answers %s after up began", time.Since(start).Round(time.Millisecond))

	// Without wgbird, a restarted BIRD stays withdrawn: the static protocol
	// starts disabled.
	s1 := Servers[0]
	t0, err := l.Fail(ctx, "s1", BirdRestart)
	if err != nil {
		t.Fatal(err)
	}
	c = waitFor(t, w, t0, 10*time.Second, "s1 withdrawn by the BIRD restart", labjudge.Lacks(s1.Addr))
	t.Logf("BIRD restart withdrew s1 in %d ms", c.At.Sub(t0).Milliseconds())
	if err := labproc.Poll(ctx, 15*time.Second, 100*time.Millisecond, "router's BGP session to s1", func() (bool, error) {
		out, err := l.birdc(ctx, "router", "show", "protocols", "bgp_s1")
		return strings.Contains(out, "Established"), err
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if bad := w.Always(c.At, time.Now(), labjudge.Lacks(s1.Addr)); bad != nil {
		t.Errorf("s1 came back without anyone enabling %s: %v", Protocol, bad)
	}
	if bad := w.Always(t0, time.Now(), labjudge.Has(Servers[1].Addr)); bad != nil {
		t.Errorf("s2 lost its nexthop: %v", bad)
	}
	t.Logf("BGP re-established %s after the restart; s1 still withdrawn", time.Since(t0).Round(time.Millisecond))

	w.Close()
	start = time.Now()
	if err := l.Down(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("down in %s", time.Since(start).Round(time.Millisecond))
	for _, n := range allNodes {
		if nsExists(l.NS(n)) {
			t.Errorf("namespace %s survived down", l.NS(n))
		}
	}
	if _, err := os.Stat(cfg.Dir); !os.IsNotExist(err) {
		t.Errorf("lab dir survived down: %v", err)
	}
	out, err := labproc.Run(ctx, "ip", "-o", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, cfg.Prefix+"-") {
		t.Errorf("host links of the lab survived down:\n%s", out)
	}
	if err := l.Down(ctx); err != nil {
		t.Errorf("second down: %v", err)
	}
}

// TestFaultModes breaks a server in every mode: its nexthop goes, the
// other server's never does, and after heal it comes back only after rise.
func TestFaultModes(t *testing.T) {
	l := sharedLab(t)
	for i, m := range Modes {
		t.Run(string(m.Mode), func(t *testing.T) {
			if m.NeedsProbe && l.cfg.NoProbe {
				t.Skip("the lab runs wgbird without the probe")
			}
			if l.cfg.KernelWireGuard && (m.Mode == Kill || m.Mode == Hang) {
				t.Skip("acts on wireguard-go; the lab runs kernel WireGuard")
			}
			failAndHeal(t, l, m, Servers[i%2])
		})
	}
}

// failAndHeal breaks target in mode m and checks, by the router's kernel
// table, that its nexthop goes while the other server's never does, stays
// away until heal (a self-healing mode comes back by itself), and comes
// back only after rise.
func failAndHeal(t *testing.T, l *Lab, m ModeInfo, target Server) {
	t.Helper()
	th := testThresholds.Effective()
	ready(t, l)
	ctx := context.Background()
	keep := other(target)
	w := watch(t, l)

	t0, err := l.Fail(ctx, target.Name, m.Mode)
	if err != nil {
		t.Fatal(err)
	}
	c := waitFor(t, w, t0, 15*time.Second, target.Name+"'s nexthop withdrawn", labjudge.Lacks(target.Addr))
	t.Logf("%s on %s: nexthop withdrawn %d ms after the fault", m.Mode, target.Name, c.At.Sub(t0).Milliseconds())

	if m.SelfHealing {
		// WireGuard is healthy: wgbird's reconcile re-enables the
		// protocol BIRD dropped.
		back := waitFor(t, w, c.At, 20*time.Second, target.Name+"'s nexthop back by reconcile", labjudge.Has(target.Addr))
		t.Logf("back %d ms after the fault, without heal", back.At.Sub(t0).Milliseconds())
		if err := l.Heal(ctx, target.Name); err != nil {
			t.Fatal(err)
		}
	} else {
		// Still withdrawn a while later: nothing comes back by itself.
		time.Sleep(th.Interval)
		if bad := w.Always(c.At, time.Now(), labjudge.Lacks(target.Addr)); bad != nil {
			t.Fatalf("%s came back before heal: %v", target.Name, bad)
		}
		h := time.Now()
		if err := l.Heal(ctx, target.Name); err != nil {
			t.Fatal(err)
		}
		back := waitFor(t, w, h, 20*time.Second, target.Name+"'s nexthop back after heal", labjudge.Has(target.Addr))
		// The first healthy check is no earlier than h, and rise
		// needs rise-1 more, an interval apart. A tenth of an
		// interval allows for timer jitter.
		min := time.Duration(th.Rise-1)*th.Interval - th.Interval/10
		took := back.At.Sub(h)
		t.Logf("heal: nexthop back %d ms after heal began (rise %d x %s: no earlier than %d ms)", took.Milliseconds(), th.Rise, th.Interval, min.Milliseconds())
		if took < min {
			t.Errorf("%s announced %s after heal began, before rise allows (%s)\n%s", target.Name, took, min, l.logs())
		}
	}
	waitFor(t, w, t0, 20*time.Second, "both nexthops", All)
	if bad := w.Always(t0, time.Now(), labjudge.Has(keep.Addr)); bad != nil {
		t.Errorf("%s's nexthop disappeared while %s was broken: %v\nchanges: %v", keep.Name, target.Name, bad, w.Changes())
	}
	checkConsistent(t, l, w)
}

// TestBirdResetOnUnhealthyServer restarts BIRD, or runs `birdc
// configure`, on a server whose WireGuard is broken: BIRD forgets wgbird's
// disable, but the static protocol starts disabled and wgbird keeps it so,
// so the nexthop never reappears.
func TestBirdResetOnUnhealthyServer(t *testing.T) {
	l := sharedLab(t)
	th := testThresholds.Effective()
	for _, mode := range []Mode{BirdRestart, BirdConfigure} {
		t.Run(string(mode), func(t *testing.T) {
			ready(t, l)
			ctx := context.Background()
			s := Servers[0]
			w := watch(t, l)
			t0, err := l.Fail(ctx, s.Name, KeyRemove)
			if err != nil {
				t.Fatal(err)
			}
			c := waitFor(t, w, t0, 15*time.Second, "withdrawn after key-remove", labjudge.Lacks(s.Addr))
			t.Logf("key-remove: withdrawn in %d ms", c.At.Sub(t0).Milliseconds())

			t1, err := l.Fail(ctx, s.Name, mode)
			if err != nil {
				t.Fatal(err)
			}
			// Watch across the BGP session coming back (after a restart)
			// and several wgbird intervals.
			if err := labproc.Poll(ctx, 15*time.Second, 50*time.Millisecond, "router's BGP session to "+s.Name, func() (bool, error) {
				out, err := l.birdc(ctx, "router", "show", "protocols", "bgp_"+s.Name)
				return strings.Contains(out, "Established"), err
			}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(4 * th.Interval)
			if bad := w.Always(c.At, time.Now(), labjudge.Lacks(s.Addr)); bad != nil {
				t.Errorf("%s's nexthop reappeared after %s while unhealthy: %v\nchanges: %v", s.Name, mode, bad, w.Changes())
			}
			t.Logf("%s: nexthop stayed away for %s, BGP re-established", mode, time.Since(t1).Round(time.Millisecond))
		})
	}
}

// TestWgbirdCrashWhileHealthy kills wgbird with SIGKILL and starts it
// again: BIRD keeps announcing meanwhile, and the new wgbird, finding the
// protocol enabled and WireGuard healthy, keeps announcing.
func TestWgbirdCrashWhileHealthy(t *testing.T) {
	l := sharedLab(t)
	th := testThresholds.Effective()
	ctx := context.Background()
	s := Servers[0]
	w := watch(t, l)
	before := l.WgbirdPid(s.Name)
	t0 := time.Now()
	if err := l.KillWgbird(ctx, s.Name); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * th.Interval)
	if err := l.StartWgbird(ctx, s.Name); err != nil {
		t.Fatal(err)
	}
	after := l.WgbirdPid(s.Name)
	if after == 0 || after == before {
		t.Fatalf("wgbird pid %d before, %d after restart", before, after)
	}
	// Long enough for rise and several reconciles of the new wgbird.
	time.Sleep(time.Duration(th.Rise+3) * th.Interval)
	if bad := w.Always(t0, time.Now(), All); bad != nil {
		t.Errorf("a nexthop disappeared across the wgbird restart: %v\nchanges: %v\n%s", bad, w.Changes(), l.logs())
	}
	t.Logf("wgbird killed and restarted; both nexthops stayed for %s", time.Since(t0).Round(time.Millisecond))
}

// TestBothUnhealthy breaks both servers (no route at all), then heals one
// (exactly its nexthop), then the other.
func TestBothUnhealthy(t *testing.T) {
	l := sharedLab(t)
	th := testThresholds.Effective()
	ctx := context.Background()
	s1, s2 := Servers[0], Servers[1]
	w := watch(t, l)
	t0, err := l.Fail(ctx, s1.Name, VIPRemove)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Fail(ctx, s2.Name, LinkDown); err != nil {
		t.Fatal(err)
	}
	c := waitFor(t, w, t0, 15*time.Second, "no route", labjudge.Exactly())
	t.Logf("both broken: no route %d ms after the first fault", c.At.Sub(t0).Milliseconds())
	if nh, err := l.Nexthops(); err != nil || len(nh) != 0 {
		t.Errorf("router still routes %s via %s (%v)", VIPPrefix, labjudge.FormatNexthops(nh), err)
	}

	h := time.Now()
	if err := l.Heal(ctx, s1.Name); err != nil {
		t.Fatal(err)
	}
	c = waitFor(t, w, h, 20*time.Second, "exactly s1", labjudge.Exactly(s1.Addr))
	t.Logf("s1 healed: exactly %s %d ms after heal began", s1.Addr, c.At.Sub(h).Milliseconds())
	time.Sleep(time.Duration(th.Rise+1) * th.Interval)
	if bad := w.Always(c.At, time.Now(), labjudge.Exactly(s1.Addr)); bad != nil {
		t.Errorf("want exactly %s while s2 is broken, got %v", s1.Addr, bad)
	}
	if err := l.Heal(ctx, s2.Name); err != nil {
		t.Fatal(err)
	}
	waitFor(t, w, h, 20*time.Second, "both back", All)
	checkConsistent(t, l, w)
}

// TestClientTunnelFailover hangs WireGuard on the server the client's
// tunnel uses: the router withdraws it and the tunnel works again through
// the other server, which holds the same key.
func TestClientTunnelFailover(t *testing.T) {
	l := sharedLab(t)
	ctx := context.Background()
	active, standby := tunnelServers(t, ctx, l)
	w := watch(t, l)
	t0, err := l.Fail(ctx, active.Name, Hang)
	if err != nil {
		t.Fatal(err)
	}
	c := waitFor(t, w, t0, 15*time.Second, active.Name+" withdrawn", labjudge.Lacks(active.Addr))
	t.Logf("hang: %s withdrawn in %d ms", active.Name, c.At.Sub(t0).Milliseconds())
	pctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	ok, err := l.PingTunnelUntil(pctx, 250*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tunnel answers again %s after the hang (WireGuard re-handshakes after 15 s without an answer)", ok.Sub(t0).Round(time.Millisecond))
	now, err := l.ActiveServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if now != standby.Name {
		t.Errorf("the tunnel now goes to %s, want %s", now, standby.Name)
	}
	if bad := w.Always(t0, time.Now(), labjudge.Has(standby.Addr)); bad != nil {
		t.Errorf("%s's nexthop disappeared: %v", standby.Name, bad)
	}
}

// keptRoute fails t unless keep's nexthop stayed in the router's table
// from since until now: a fault on one server must not touch the other.
func keptRoute(t *testing.T, w *labjudge.Watcher, since time.Time, keep Server) {
	t.Helper()
	if bad := w.Always(since, time.Now(), labjudge.Has(keep.Addr)); bad != nil {
		t.Errorf("%s's nexthop disappeared: %v", keep.Name, bad)
	}
}

// tunnelServers waits for the client's tunnel and returns the server it
// goes to and the other one.
func tunnelServers(t *testing.T, ctx context.Context, l *Lab) (active, standby Server) {
	t.Helper()
	if err := l.WaitTunnel(ctx, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	name, err := l.ActiveServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	active, _ = ServerByName(name)
	t.Logf("the client's tunnel goes to %s", active.Name)
	return active, other(active)
}
