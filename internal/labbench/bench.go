package labbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/bird"
	"github.com/wgbird/wgbird/internal/lab"
	"github.com/wgbird/wgbird/internal/labjudge"
	"github.com/wgbird/wgbird/internal/labproc"
)

// The failover benchmark: how fast the router drops a broken server and
// takes it back, with wgbird and with the references (BIRD's socket
// alone, BIRD + BFD without a sidecar, ExaBGP's healthcheck), and what an
// idle wgbird costs. The times come from the Watcher: one clock, a
// netlink route subscription in the router's namespace.

// DefaultBenchDir and DefaultBenchPrefix keep the benchmark's lab apart
// from the demo's and the tests'.
const (
	DefaultBenchDir    = "/run/wgbb-bench"
	DefaultBenchPrefix = "wgbb"
)

// BenchSeries is one set-up the benchmark measures.
type BenchSeries string

// The series, in the order they run: each leaves the bench server in a
// state the next one starts from.
const (
	SeriesWgbird BenchSeries = "wgbird" // BIRD + BFD + wgbird at its defaults
	SeriesFloor  BenchSeries = "floor"  // disable/enable straight to BIRD's socket
	SeriesBird   BenchSeries = "bird"   // BIRD + BFD, no sidecar, static protocol enabled
	SeriesExaBGP BenchSeries = "exabgp" // ExaBGP's healthcheck instead of BIRD + wgbird
	SeriesIdle   BenchSeries = "idle"   // CPU and RSS of an idle wgbird with many peers
	SeriesReload BenchSeries = "reload" // birdc configure on a healthy server: the nexthop's blip
)

// AllSeries lists every series in run order.
var AllSeries = []BenchSeries{SeriesWgbird, SeriesClient, SeriesFloor, SeriesBird, SeriesExaBGP, SeriesOSPF, SeriesIdle, SeriesReload}

// BenchModes are the modes the benchmark measures: every fault of
// WireGuard, and drain. BIRD restart and configure heal themselves, so
// they are no failover.
var BenchModes = []lab.Mode{lab.Kill, lab.Hang, lab.LinkDelete, lab.LinkDown, lab.VIPRemove, lab.KeyRemove, lab.PortChange, lab.PeersRemove, lab.Drain, lab.KeyRotate}

// giveUpAfter: a mode that a series has not withdrawn in this many tries
// in a row, from the first, is reported "not withdrawn" without the rest.
const giveUpAfter = 2

// ParseSeries parses a comma-separated list of series ("all" for every).
func ParseSeries(s string) ([]BenchSeries, error) {
	if s == "" || s == "all" {
		return slices.Clone(AllSeries), nil
	}
	var out []BenchSeries
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(AllSeries, BenchSeries(f)) {
			return nil, fmt.Errorf("unknown series %q (want a comma-separated list of wgbird, client, floor, bird, exabgp, ospf, idle, or all)", f)
		}
		if !slices.Contains(out, BenchSeries(f)) {
			out = append(out, BenchSeries(f))
		}
	}
	return out, nil
}

// ParseBenchModes parses a comma-separated list of modes ("all" for
// BenchModes).
func ParseBenchModes(s string) ([]lab.Mode, error) {
	if s == "" || s == "all" {
		return slices.Clone(BenchModes), nil
	}
	var out []lab.Mode
	for _, f := range strings.Split(s, ",") {
		m := lab.Mode(strings.TrimSpace(f))
		if !slices.Contains(BenchModes, m) {
			names := make([]string, len(BenchModes))
			for i, b := range BenchModes {
				names[i] = string(b)
			}
			return nil, fmt.Errorf("mode %q is not benchmarked (want a comma-separated list of %s, or all)", f, strings.Join(names, ", "))
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, nil
}

// BenchConfig describes a benchmark run.
type BenchConfig struct {
	// Lab is the lab to bring up (Dir and Prefix default to
	// DefaultBenchDir and DefaultBenchPrefix). Wgbird is required.
	// Thresholds apply to the bench server's wgbird.
	Lab lab.Config
	// Server is the server that is broken (default s1).
	Server string
	// Series and Modes to run (default all of each).
	Series []BenchSeries
	Modes  []lab.Mode
	// Reps per mode for wgbird (default 20), RefReps for the references
	// (default Reps).
	Reps, RefReps int
	// Bound is how long to wait for a withdrawal before calling it "not
	// withdrawn" (default 10 s).
	Bound time.Duration
	// IdleWindow and IdlePeers describe the idle-cost measurement
	// (default 60 s, 1,000 peers).
	IdleWindow time.Duration
	IdlePeers  int
	// ClientReps and ClientModes are the client series' repetitions per
	// mode and takeover setting (default 5) and modes (default
	// ClientModes).
	ClientReps  int
	ClientModes []lab.Mode
	// KeepTimelines keeps the first repetition of every client mode as a
	// Timeline, not only of TimelineModes.
	KeepTimelines bool
	// Progress receives a line per repetition (discarded if nil).
	Progress io.Writer
}

func (c BenchConfig) withDefaults() BenchConfig {
	if c.Lab.Dir == "" {
		c.Lab.Dir = DefaultBenchDir
	}
	if c.Lab.Prefix == "" {
		c.Lab.Prefix = DefaultBenchPrefix
	}
	if c.Server == "" {
		c.Server = "s1"
	}
	if c.Series == nil {
		c.Series = slices.Clone(AllSeries)
	}
	if c.Modes == nil {
		c.Modes = slices.Clone(BenchModes)
	}
	if c.Reps <= 0 {
		c.Reps = 20
	}
	if c.RefReps <= 0 {
		c.RefReps = c.Reps
	}
	if c.Bound <= 0 {
		c.Bound = 10 * time.Second
	}
	if c.IdleWindow <= 0 {
		c.IdleWindow = time.Minute
	}
	if c.IdlePeers <= 0 {
		c.IdlePeers = 1000
	}
	if c.ClientReps <= 0 {
		c.ClientReps = 5
	}
	if c.ClientModes == nil {
		c.ClientModes = slices.Clone(ClientModes)
	}
	if slices.Contains(c.Series, SeriesClient) {
		c.Lab.IdleClient = true
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return c
}

// returnBound is how long to wait for a healed server's nexthop.
const returnBound = 30 * time.Second

// bench is one run in progress.
type bench struct {
	cfg BenchConfig
	l   *lab.Lab
	w   *labjudge.Watcher
	srv lab.Server
	out io.Writer
	// exabgpPid is the ExaBGP the ExaBGP series started, 0 when none runs.
	exabgpPid int
}

// RunBench brings a lab up, runs the series and tears the lab down. It
// returns what it measured also when it fails part-way.
func RunBench(ctx context.Context, cfg BenchConfig) (res *BenchResult, err error) {
	cfg = cfg.withDefaults()
	res = &BenchResult{
		Started: time.Now(), Machine: ReadMachine(ctx), Thresholds: cfg.Lab.Thresholds.Effective(),
		Server: cfg.Server, Reps: cfg.Reps, RefReps: cfg.RefReps, Bound: cfg.Bound,
	}
	defer func() { res.Took = time.Since(res.Started); res.Machine.LoadEnd = loadavg() }()
	srv, err := lab.ServerByName(cfg.Server)
	if err != nil {
		return res, err
	}
	if cfg.Lab.Wgbird == "" {
		return res, errors.New("the benchmark needs a wgbird binary")
	}
	l, err := lab.Up(ctx, cfg.Lab)
	if err != nil {
		return res, err
	}
	b := &bench{cfg: cfg, l: l, srv: srv, out: cfg.Progress}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if derr := l.Down(dctx); derr != nil && err == nil {
			err = fmt.Errorf("tearing the lab down: %w", derr)
		}
	}()
	if err := l.WaitRouted(ctx, 30*time.Second); err != nil {
		return res, err
	}
	b.w, err = l.Watch()
	if err != nil {
		return res, err
	}
	defer b.w.Close()
	for _, s := range AllSeries {
		if !slices.Contains(cfg.Series, s) {
			continue
		}
		start := time.Now()
		fmt.Fprintf(b.out, "== %s\n", seriesTitle(s))
		var sr SeriesResult
		switch s {
		case SeriesWgbird:
			sr = b.runWgbird(ctx)
		case SeriesFloor:
			sr = b.runFloor(ctx)
		case SeriesBird:
			sr = b.runBirdAlone(ctx)
		case SeriesExaBGP:
			sr = b.runExaBGP(ctx)
		case SeriesOSPF:
			sr = b.runOSPF(ctx)
		case SeriesIdle:
			id := b.runIdle(ctx)
			res.Idle = &id
			fmt.Fprintf(b.out, "   (%s)\n", time.Since(start).Round(time.Second))
			continue
		case SeriesClient:
			res.Client = b.runClient(ctx)
			if res.Client.Skipped != "" {
				fmt.Fprintf(b.out, "   skipped: %s\n", res.Client.Skipped)
			}
			fmt.Fprintf(b.out, "   (%s)\n", time.Since(start).Round(time.Second))
			continue
		case SeriesReload:
			rl := b.runReload(ctx)
			res.Reload = &rl
			fmt.Fprintf(b.out, "   (%s)\n", time.Since(start).Round(time.Second))
			continue
		}
		res.Series = append(res.Series, sr)
		if sr.Skipped != "" {
			fmt.Fprintf(b.out, "   skipped: %s\n", sr.Skipped)
		}
		fmt.Fprintf(b.out, "   (%s)\n", time.Since(start).Round(time.Second))
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if err := b.w.Err(); err != nil {
			return res, err
		}
	}
	return res, ctx.Err()
}

// faultFunc injects a fault and returns the instant just before.
type faultFunc func(ctx context.Context) (time.Time, error)

// healFunc restores the server.
type healFunc func(ctx context.Context) error

// runMode measures one mode: reps repetitions of fault, wait, heal, wait.
func (b *bench) runMode(ctx context.Context, s BenchSeries, mode lab.Mode, reps int, jitter bool, fail faultFunc, heal healFunc) ModeResult {
	mr := ModeResult{Mode: mode}
	misses, errs := 0, 0
	for i := range reps {
		if ctx.Err() != nil {
			mr.Note = "interrupted"
			break
		}
		smp := b.rep(ctx, jitter, fail, heal)
		mr.Samples = append(mr.Samples, smp)
		b.progress(s, mode, i+1, reps, smp)
		switch {
		case smp.Err != "":
			errs++
		case !smp.Withdrawn:
			misses++
		}
		if misses >= giveUpAfter && misses == len(mr.Samples) {
			mr.Note = fmt.Sprintf("not withdrawn within %s in %d tries: stopped", FormatDuration(b.cfg.Bound), misses)
			break
		}
		if errs >= 3 && errs == len(mr.Samples) {
			mr.Note = "the first repetitions failed: stopped"
			break
		}
	}
	return mr
}

func (b *bench) progress(s BenchSeries, mode lab.Mode, i, n int, smp Sample) {
	var what string
	switch {
	case smp.Err != "":
		what = "error: " + smp.Err
	case !smp.Withdrawn:
		what = fmt.Sprintf("not withdrawn within %s", FormatDuration(b.cfg.Bound))
	case smp.Returned:
		what = fmt.Sprintf("withdrawn %-9s back %-9s (heal took %s)", FormatDuration(smp.Withdraw), FormatDuration(smp.Return), FormatDuration(smp.Heal))
	default:
		what = fmt.Sprintf("withdrawn %-9s not back within %s", FormatDuration(smp.Withdraw), returnBound)
	}
	fmt.Fprintf(b.out, "   %-7s %-13s %2d/%-2d %s\n", s, mode, i, n, what)
}

// rep is one repetition. The server must be routed before the fault; the
// fault comes at a random point of the check interval when jitter is
// set, so that the results cover every phase of wgbird's timer.
func (b *bench) rep(ctx context.Context, jitter bool, fail faultFunc, heal healFunc) Sample {
	var s Sample
	addr := b.srv.Addr
	wctx, cancel := context.WithTimeout(ctx, returnBound)
	_, err := b.w.WaitFor(wctx, time.Now(), lab.All)
	cancel()
	if err != nil {
		s.Err = "not routed via both servers before the fault: " + err.Error()
		_ = heal(ctx)
		return s
	}
	if jitter {
		iv := b.cfg.Lab.Thresholds.Effective().Interval
		if err := sleepCtx(ctx, rand.N(iv)); err != nil {
			s.Err = err.Error()
			return s
		}
	}
	t0, err := fail(ctx)
	if err != nil {
		s.Err = err.Error()
		_ = heal(ctx)
		return s
	}
	wctx, cancel = context.WithTimeout(ctx, b.cfg.Bound)
	c, err := b.w.WaitFor(wctx, t0, labjudge.Lacks(addr))
	cancel()
	switch {
	case err == nil:
		s.Withdrawn, s.Withdraw = true, c.At.Sub(t0)
	case ctx.Err() != nil:
		s.Err = ctx.Err().Error()
	case b.w.Err() != nil:
		s.Err = b.w.Err().Error()
	}
	h0 := time.Now()
	err = heal(ctx)
	s.Heal = time.Since(h0)
	if err != nil {
		s.Err = "healing: " + err.Error()
		return s
	}
	if !s.Withdrawn {
		return s
	}
	wctx, cancel = context.WithTimeout(ctx, returnBound)
	c, err = b.w.WaitFor(wctx, h0, labjudge.Has(addr))
	cancel()
	if err == nil {
		s.Returned, s.Return = true, c.At.Sub(h0)
	}
	return s
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// --- wgbird -----------------------------------------------------------

// BenchWgbirdConf is the bench server's wgbird.toml: wgbird's defaults,
// the lab's paths, listen_port (as the references were measured) and
// the thresholds that are not zero. No metrics, no probe.
func BenchWgbirdConf(dir string, t lab.Thresholds) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[bird]\nsocket = %q\n\n[control]\nsocket = %q\nruntime_dir = %q\nstate_dir = %q\n\n",
		dir+"/bird.ctl", dir+"/wgbird.sock", dir+"/run", dir+"/state")
	fmt.Fprintf(&b, "[[service]]\ninterface = %q\nvips = [%q]\nprotocols = [%q]\nlisten_port = %d\n", lab.WGInterface, lab.VIP, lab.Protocol, lab.ListenPort)
	b.WriteString(t.TOML())
	return b.String()
}

// benchStartWgbird (re)starts server's wgbird with BenchWgbirdConf, plus
// the probe when withProbe, and without --pprof when plain. The old one
// is stopped with SIGTERM, which leaves BIRD as it is. Heal keeps a
// running wgbird, so the lab's own config does not come back.
func (b *bench) benchStartWgbird(ctx context.Context, server string, withProbe, plain bool) error {
	if err := b.benchStopWgbird(ctx, server); err != nil {
		return err
	}
	l := b.l
	dir := strings.TrimSuffix(l.Path(server, ""), "/")
	text := BenchWgbirdConf(dir, l.Config().Thresholds)
	if withProbe {
		pub, err := benchPublicKey(l.Path(server, "private.key"))
		if err != nil {
			return err
		}
		text += lab.ProbeTable(l.ProbeKeyFile(server), pub)
	}
	conf := l.Path(server, "wgbird-bench.toml")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", conf, err)
	}
	if plain {
		return l.RunWgbirdPlain(ctx, server, conf, 5*time.Second)
	}
	return l.RunWgbird(ctx, server, conf, 5*time.Second)
}

// benchStopWgbird stops server's wgbird, if one runs, with SIGTERM: its
// on_stop default, keep, leaves BIRD as it is.
func (b *bench) benchStopWgbird(ctx context.Context, server string) error {
	if pid := b.l.WgbirdPid(server); pid > 0 {
		return labproc.StopPid(ctx, pid, syscall.SIGTERM, 5*time.Second)
	}
	return nil
}

func benchPublicKey(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading the server key: %w", err)
	}
	k, err := wgtypes.ParseKey(strings.TrimSpace(string(b)))
	if err != nil {
		return "", fmt.Errorf("parsing the server key %s: %w", file, err)
	}
	return k.PublicKey().String(), nil
}

// modeKnown reports whether this lab can inject mode.
func modeKnown(m lab.Mode) bool {
	_, err := lab.ParseMode(string(m))
	return err == nil
}

func (b *bench) runWgbird(ctx context.Context) SeriesResult {
	th := b.cfg.Lab.Thresholds.Effective()
	sr := SeriesResult{Series: SeriesWgbird,
		Setup: fmt.Sprintf("BIRD with BFD and wgbird on %s; wgbird's config has only the lab's paths, the service (wg0, the VIP, %s) and `listen_port = %d`, so interval %s, rise %d, fall %d. Heal restarts wireguard-go if it is gone, restores wg0's key, port, peers and addresses, sets it up and undrains.",
			b.srv.Name, lab.Protocol, lab.ListenPort, th.Interval, th.Rise, th.Fall)}
	server := b.srv.Name
	probeOn := -1 // unknown
	for _, mode := range b.cfg.Modes {
		if ctx.Err() != nil {
			break
		}
		wantProbe := mode == lab.KeyRotate
		if !modeKnown(mode) {
			sr.Modes = append(sr.Modes, ModeResult{Mode: mode, NA: "the lab cannot inject it"})
			continue
		}
		if wantProbe {
			if _, err := os.Stat(b.l.ProbeKeyFile(server)); err != nil {
				sr.Modes = append(sr.Modes, ModeResult{Mode: mode, NA: "the lab has no probe key"})
				continue
			}
		}
		if probeOn != boolInt(wantProbe) {
			if err := b.l.Heal(ctx, server); err != nil {
				sr.Modes = append(sr.Modes, ModeResult{Mode: mode, NA: "heal failed: " + err.Error()})
				continue
			}
			if err := b.benchStartWgbird(ctx, server, wantProbe, false); err != nil {
				sr.Modes = append(sr.Modes, ModeResult{Mode: mode, NA: err.Error()})
				probeOn = -1
				continue
			}
			probeOn = boolInt(wantProbe)
		}
		sr.Modes = append(sr.Modes, b.runMode(ctx, SeriesWgbird, mode, b.cfg.Reps, true,
			func(ctx context.Context) (time.Time, error) { return b.l.Fail(ctx, server, mode) },
			func(ctx context.Context) error { return b.l.Heal(ctx, server) }))
	}
	return sr
}

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

// --- the floor and BIRD alone ---------------------------------------

// birdClient returns a client of server's BIRD.
func (b *bench) birdClient(server string) *bird.Client {
	return bird.NewClient(b.l.BirdSocket(server), bird.Options{Timeout: 2 * time.Second})
}

// bare prepares server for the series without wgbird: wgbird stopped,
// BIRD running with the static protocol enabled, WireGuard whole.
func (b *bench) bare(ctx context.Context, c *bird.Client) error {
	server := b.srv.Name
	if err := b.benchStopWgbird(ctx, server); err != nil {
		return err
	}
	return b.healBare(ctx, c)
}

// healBare restores server without wgbird: BIRD running, WireGuard whole,
// the static protocol enabled.
func (b *bench) healBare(ctx context.Context, c *bird.Client) error {
	server := b.srv.Name
	if err := b.l.StartBird(ctx, server); err != nil {
		return err
	}
	if err := b.l.EnsureWireGuard(ctx, server); err != nil {
		return err
	}
	return c.Enable(ctx, lab.Protocol)
}

func (b *bench) runFloor(ctx context.Context) SeriesResult {
	sr := SeriesResult{Series: SeriesFloor,
		Setup: fmt.Sprintf("wgbird stopped on %s; `disable \"%s\"` and `enable \"%s\"` sent through one persistent connection to BIRD's socket (internal/bird's client); withdraw from just before `disable`, return from just before `enable`.", b.srv.Name, lab.Protocol, lab.Protocol)}
	c := b.birdClient(b.srv.Name)
	defer c.Close()
	if err := b.bare(ctx, c); err != nil {
		sr.Skipped = err.Error()
		return sr
	}
	sr.Modes = append(sr.Modes, b.runMode(ctx, SeriesFloor, floorMode, b.cfg.RefReps, false,
		func(ctx context.Context) (time.Time, error) {
			t0 := time.Now()
			return t0, c.Disable(ctx, lab.Protocol)
		},
		func(ctx context.Context) error { return c.Enable(ctx, lab.Protocol) }))
	return sr
}

func (b *bench) runBirdAlone(ctx context.Context) SeriesResult {
	sr := SeriesResult{Series: SeriesBird,
		Setup: fmt.Sprintf("wgbird stopped on %s, `%s` enabled (its route is `via \"%s\"`), BGP with BFD 100 ms × 5 to the router; heal restores WireGuard as for wgbird and enables `%s` again.", b.srv.Name, lab.Protocol, lab.WGInterface, lab.Protocol)}
	c := b.birdClient(b.srv.Name)
	defer c.Close()
	if err := b.bare(ctx, c); err != nil {
		sr.Skipped = err.Error()
		return sr
	}
	server := b.srv.Name
	for _, mode := range b.cfg.Modes {
		if ctx.Err() != nil {
			break
		}
		switch {
		case mode == lab.Drain:
			sr.Modes = append(sr.Modes, ModeResult{Mode: mode, NA: "no sidecar to drain"})
			continue
		case !modeKnown(mode):
			sr.Modes = append(sr.Modes, ModeResult{Mode: mode, NA: "the lab cannot inject it"})
			continue
		}
		sr.Modes = append(sr.Modes, b.runMode(ctx, SeriesBird, mode, b.cfg.RefReps, true,
			func(ctx context.Context) (time.Time, error) { return b.l.Fail(ctx, server, mode) },
			func(ctx context.Context) error { return b.healBare(ctx, c) }))
	}
	return sr
}

// --- idle cost ----------------------------------------------------------

func (b *bench) runIdle(ctx context.Context) IdleResult {
	th := b.cfg.Lab.Thresholds.Effective()
	res := IdleResult{Peers: b.cfg.IdlePeers, Interval: th.Interval, Window: b.cfg.IdleWindow}
	server := b.srv.Name
	l := b.l
	if err := b.stopExaBGP(ctx); err != nil {
		res.Skipped = err.Error()
		return res
	}
	if err := l.StartBird(ctx, server); err != nil {
		res.Skipped = err.Error()
		return res
	}
	if err := l.EnsureWireGuard(ctx, server); err != nil {
		res.Skipped = err.Error()
		return res
	}
	if err := b.addPeers(ctx, server, b.cfg.IdlePeers); err != nil {
		res.Skipped = err.Error()
		return res
	}
	if err := b.benchStartWgbird(ctx, server, false, true); err != nil {
		res.Skipped = err.Error()
		return res
	}
	if err := l.WaitRouted(ctx, 30*time.Second); err != nil {
		res.Skipped = err.Error()
		return res
	}
	if err := sleepCtx(ctx, 5*time.Second); err != nil {
		res.Skipped = err.Error()
		return res
	}
	pid := l.WgbirdPid(server)
	before, err := cpuTime(pid)
	if err != nil {
		res.Skipped = err.Error()
		return res
	}
	fmt.Fprintf(b.out, "   wgbird (pid %d) with %d peers, measuring for %s\n", pid, b.cfg.IdlePeers, b.cfg.IdleWindow)
	if err := sleepCtx(ctx, b.cfg.IdleWindow); err != nil {
		res.Skipped = err.Error()
		return res
	}
	after, err := cpuTime(pid)
	if err == nil {
		var mem labproc.MemStatus
		mem, err = labproc.ReadMemStatus(pid)
		res.PeakRSS, res.RSS, res.RSSAnon, res.RSSFile = mem.HWM, mem.RSS, mem.Anon, mem.File
	}
	if err != nil || l.WgbirdPid(server) != pid {
		res.Skipped = fmt.Sprintf("wgbird exited during the measurement (%v)", err)
		return res
	}
	res.CPU = after - before
	fmt.Fprintf(b.out, "   CPU %.2f s in %s (%.3f %% of one core), peak RSS %.1f MB\n",
		res.CPU.Seconds(), b.cfg.IdleWindow, 100*res.CPUShare(), float64(res.PeakRSS)/1e6)
	return res
}

// addPeers adds peers to server's wg0 until it has n.
func (b *bench) addPeers(ctx context.Context, server string, n int) error {
	out, err := b.l.WG(ctx, server, "show", lab.WGInterface, "peers")
	if err != nil {
		return err
	}
	have := len(strings.Fields(out))
	var conf strings.Builder
	for i := range max(0, n-have) {
		k, err := wgtypes.GeneratePrivateKey()
		if err != nil {
			return err
		}
		fmt.Fprintf(&conf, "[Peer]\nPublicKey = %s\nAllowedIPs = 10.200.%d.%d/32\n\n", k.PublicKey(), i>>8, i&0xff)
	}
	file := b.l.Path(server, "bench-peers.conf")
	if err := os.WriteFile(file, []byte(conf.String()), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	if _, err := b.l.WG(ctx, server, "addconf", lab.WGInterface, file); err != nil {
		return fmt.Errorf("adding peers: %w", err)
	}
	out, err = b.l.WG(ctx, server, "show", lab.WGInterface, "peers")
	if err != nil {
		return err
	}
	if got := len(strings.Fields(out)); got < n {
		return fmt.Errorf("wg0 has %d peers after adding, want %d", got, n)
	}
	return nil
}

// clockTick is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture.
const clockTick = 10 * time.Millisecond

// cpuTime returns a process's user + system time.
func cpuTime(pid int) (time.Duration, error) {
	if pid <= 0 {
		return 0, errors.New("no process")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading CPU time: %w", err)
	}
	return parseStatCPU(string(b))
}

// parseStatCPU returns utime + stime of a /proc/PID/stat line.
func parseStatCPU(s string) (time.Duration, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat %q", s)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed stat %q", s)
	}
	var ticks int64
	for _, x := range f[11:13] {
		var n int64
		if _, err := fmt.Sscan(x, &n); err != nil {
			return 0, fmt.Errorf("malformed stat %q", s)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// --- the machine -----------------------------------------------------------

// ReadMachine describes this machine and the versions of the parts.
func ReadMachine(ctx context.Context) Machine {
	m := Machine{Cores: runtime.NumCPU(), LoadStart: loadavg(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPU = cpuModel(string(b))
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if out, err := labproc.Run(ctx, "bird", "--version"); err == nil {
		m.Bird = firstLine(out)
	}
	if out, err := labproc.Run(ctx, "wireguard-go", "--version"); err == nil {
		m.WGGo = firstLine(out)
	}
	if v, err := exabgpVersion(ctx); err == nil {
		m.ExaBGP = v
	}
	return m
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel(cpuinfo string) string {
	for _, line := range strings.Split(cpuinfo, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(s)
}

// loadavg returns the 1, 5 and 15 minute load averages.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
