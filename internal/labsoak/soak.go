package labsoak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/wgbird/wgbird/internal/lab"
	"github.com/wgbird/wgbird/internal/labjudge"
	"github.com/wgbird/wgbird/internal/labproc"
)

// Options configure Run.
type Options struct {
	// Cycles is the number of fail/heal cycles.
	Cycles int
	// Seed makes the run repeatable; 0 picks one from the clock (the
	// result says which).
	Seed uint64
	// Out receives one line per cycle and the summary (nil: discarded).
	Out io.Writer
	// Settle bounds each wait for the router's table to reach the truth
	// (default 20 s: a BIRD restart waits for BGP to re-form).
	Settle time.Duration
	// WarmUp is the number of cycles after which each wgbird's heap is
	// the baseline of the heap check (default: a fifth of the cycles, at
	// most WarmUpMax): what a wgbird allocates once, the first time it
	// sees each fault, is in the baseline; what it keeps per fault grows
	// from there to the end.
	WarmUp int
	// HeapSlack is the growth of the heap in use, and of the live heap,
	// allowed between the warm-up and the end (default HeapSlack).
	HeapSlack int64
	// FailOnPin makes a client found off the service address after a
	// cycle a failure of the soak; without it, pins are counted and
	// printed (issue 13's target is 0).
	FailOnPin bool
	// ProfileDir, if set, receives each wgbird's heap profile at every
	// memory checkpoint: heap-s1-0100.pb.gz after cycle 100 (go tool pprof
	// -base heap-s1-0100.pb.gz heap-s1-0500.pb.gz shows what grew).
	ProfileDir string
}

// Slack of the leak check at the end of a soak: wgbird's figures at the
// end may exceed those at the start by at most this much.
const (
	GoroutineSlack = 2
	FDSlack        = 2
	RSSSlack       = 16 << 20
	// HeapSlack bounds the growth of the heap in use and of the live
	// heap (both after a forced GC) from the warm-up to the end.
	HeapSlack = 256 << 10
	// WarmUpMax caps the default warm-up: a 500-cycle soak compares
	// cycle 100 with the end.
	WarmUpMax = 100
	// memEvery: the memory figures are also taken every this many
	// cycles, for the README's table (start, after 100, after 500).
	memEvery = 100
)

// WgbirdExtra is what `wgbird-lab soak` adds to each wgbird.toml
// (Config.WgbirdExtra): an exec check run every interval and a hook run on
// every transition, both /bin/true, so that what wgbird keeps per exec run
// and per hook run is measured with the rest.
const WgbirdExtra = `[[service.exec]]
name = "soak"
command = ["/bin/true"]

[hook]
command = ["/bin/true"]
`

// MemSample is one wgbird's memory at a checkpoint of a soak.
type MemSample struct {
	// Cycle is the number of cycles done (0: before the first).
	Cycle int
	// Mem is the resident set (anonymous and file pages); Heap the Go
	// heap right after a forced GC.
	Mem  labproc.MemStatus
	Heap HeapStats
}

// Result is what a soak found.
type Result struct {
	Seed   uint64
	Cycles int
	// Steps counts the comparisons of the router's table with the truth:
	// after each fault and after each heal.
	Steps int
	// Mismatches describes every step at which the table did not reach
	// the truth in time, left it too early, or came back before rise.
	Mismatches []string
	// Modes counts the faults injected, by mode.
	Modes map[lab.Mode]int
	// Start and End are each server's wgbird before the first and after
	// the last cycle.
	Start, End map[string]labproc.ProcStats
	// WarmUp is the cycle whose heap is the baseline of the heap check;
	// Memory each server's figures at every checkpoint: before the first
	// cycle, after the warm-up, every 100 cycles and at the end.
	WarmUp    int
	HeapSlack int64
	Memory    map[string][]MemSample
	// EndpointChecks counts the reads of a client's endpoint for the
	// server peer, one per client after every cycle; Pins lists those that
	// were not Lab.Endpoint (the VIP, or the router's public address): a
	// client pinned off it does not follow the next failover.
	EndpointChecks int
	Pins           []Pin
	// FailOnPin makes a pin a failure (Options.FailOnPin).
	FailOnPin bool
	// Leaks describes figures that grew beyond the slack, or a wgbird
	// that was restarted (crashed) on the way.
	Leaks []string
	Took  time.Duration
}

// Pin is a client found pinned off the service address after a cycle, or
// whose endpoint could not be read (Err).
type Pin struct {
	Cycle    int
	Client   string
	Endpoint netip.AddrPort
	// Inside is where the router's mapping of a right-looking Endpoint
	// leads instead of the VIP (a server's own address), if that is why.
	Inside netip.AddrPort `json:",omitempty"`
	Err    string         `json:",omitempty"`
	// PortChange: the cycle changed a server's listen port. Whatever
	// WireGuard still sends to a peer with a session (a keepalive, a
	// rekey) leaves from the new port, and the router's masquerade shows
	// the client that port: a pin wgbird cannot prevent (only refuse the
	// traffic), counted apart (Failing leaves it out).
	PortChange bool `json:",omitempty"`
}

func (p Pin) String() string { return fmt.Sprintf("cycle %d: %s", p.Cycle, p.short()) }

func (p Pin) short() string {
	switch {
	case p.Err != "":
		return fmt.Sprintf("%s's endpoint unreadable: %s", p.Client, p.Err)
	case p.Inside.IsValid():
		return fmt.Sprintf("%s's endpoint is %s, which the router maps to %s%s", p.Client, p.Endpoint, p.Inside, p.portNote())
	}
	return fmt.Sprintf("%s's endpoint is %s%s", p.Client, p.Endpoint, p.portNote())
}

func (p Pin) portNote() string {
	if p.PortChange {
		return " (after a port change: WireGuard sent from the new port)"
	}
	return ""
}

// Failing returns the pins wgbird could have prevented: all but those of
// a cycle that changed a listen port.
func (r Result) Failing() []Pin {
	var out []Pin
	for _, p := range r.Pins {
		if !p.PortChange {
			out = append(out, p)
		}
	}
	return out
}

// OK reports whether the soak found nothing wrong. A client pinned off
// the VIP counts only with FailOnPin, and then not after a port change
// (Pin.PortChange): issue 13's target of 0 is reported either way.
func (r Result) OK() bool {
	return len(r.Mismatches) == 0 && len(r.Leaks) == 0 && (!r.FailOnPin || len(r.Failing()) == 0)
}

// soakFault is one server broken in one mode within a cycle.
type soakFault struct {
	server lab.Server
	mode   lab.ModeInfo
}

// Run soaks the lab l: fail/heal cycles over both servers with modes
// chosen at random. Each cycle breaks one server (three times in four) or both, each
// in a mode of its own; waits until the router's table matches the truth
// (a server broken in a self-healing mode first goes, then comes back),
// checks that it stays so for two intervals, heals, and waits for both
// nexthops, each healed server's no sooner than rise allows. The lab must
// be up with wgbird; it is left healed. An error means the soak could not
// go on (a fault or heal failed), not that wgbird misbehaved: that is in
// the result.
func Run(ctx context.Context, l *lab.Lab, opts Options) (Result, error) {
	if opts.Settle <= 0 {
		opts.Settle = 20 * time.Second
	}
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	if opts.Seed == 0 {
		opts.Seed = uint64(time.Now().UnixNano())
	}
	if opts.WarmUp <= 0 {
		opts.WarmUp = min(opts.Cycles/5, WarmUpMax)
	}
	opts.WarmUp = min(opts.WarmUp, opts.Cycles)
	if opts.HeapSlack <= 0 {
		opts.HeapSlack = HeapSlack
	}
	res := Result{Seed: opts.Seed, Modes: map[lab.Mode]int{}, Start: map[string]labproc.ProcStats{}, End: map[string]labproc.ProcStats{},
		WarmUp: opts.WarmUp, HeapSlack: opts.HeapSlack, Memory: map[string][]MemSample{}, FailOnPin: opts.FailOnPin}
	if l.Config().Wgbird == "" {
		return res, errors.New("soak: the lab runs no wgbird")
	}
	var modes []lab.ModeInfo
	for _, m := range lab.Modes {
		if m.NeedsProbe && l.Config().NoProbe {
			continue
		}
		modes = append(modes, m)
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x77676269726473)) // "wgbirds"
	th := l.Config().Thresholds.Effective()
	fmt.Fprintf(out, "soak: seed %d, %d cycles over %s and %s, %d modes (interval %s, rise %d, fall %d)\n",
		opts.Seed, opts.Cycles, lab.Servers[0].Name, lab.Servers[1].Name, len(modes), th.Interval, th.Rise, th.Fall)

	start := time.Now()
	w, err := l.Watch()
	if err != nil {
		return res, err
	}
	defer w.Close()
	if err := healAll(ctx, l); err != nil {
		return res, err
	}
	if _, err := waitTable(ctx, w, start, opts.Settle, lab.All); err != nil {
		return res, fmt.Errorf("soak: the lab is not routed via both servers to begin with: %w", err)
	}
	// Let the heal's rise pass, so the start figures are at rest.
	time.Sleep(time.Duration(th.Rise) * th.Interval)
	for _, s := range lab.Servers {
		st, err := l.WgbirdStats(ctx, s.Name)
		if err != nil {
			return res, err
		}
		res.Start[s.Name] = st
	}
	if err := sampleMemory(ctx, l, &res, 0, opts.ProfileDir, out); err != nil {
		return res, err
	}

	mismatch := func(cycle int, format string, a ...any) {
		msg := fmt.Sprintf("cycle %d: ", cycle) + fmt.Sprintf(format, a...)
		res.Mismatches = append(res.Mismatches, msg)
		fmt.Fprintf(out, "  MISMATCH %s\n", msg)
	}
	for c := 1; c <= opts.Cycles; c++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		faults := pickFaults(rng, modes)
		var names []string
		for _, f := range faults {
			names = append(names, f.server.Name+" "+string(f.mode.Mode))
			res.Modes[f.mode.Mode]++
		}
		line := fmt.Sprintf("cycle %*d/%d: %-34s", len(fmt.Sprint(opts.Cycles)), c, opts.Cycles, strings.Join(names, ", "))

		// Fail.
		t0 := time.Now()
		for _, f := range faults {
			if _, err := l.Fail(ctx, f.server.Name, f.mode.Mode); err != nil {
				fmt.Fprintln(out, line)
				return res, fmt.Errorf("soak cycle %d: %w", c, err)
			}
		}
		truth := soakTruth(faults)
		settledFrom := t0
		for _, f := range faults {
			if !f.mode.SelfHealing {
				continue
			}
			// It goes first (BIRD forgot wgbird's enable), then wgbird's
			// reconcile brings it back.
			gone, err := waitTable(ctx, w, t0, opts.Settle, labjudge.Lacks(f.server.Addr))
			if err != nil {
				mismatch(c, "%s %s: nexthop never withdrawn (%v)", f.server.Name, f.mode.Mode, err)
				continue
			}
			if gone.At.After(settledFrom) {
				settledFrom = gone.At
			}
		}
		res.Steps++
		reached, err := waitTable(ctx, w, settledFrom, opts.Settle, labjudge.Exactly(truth...))
		if err != nil {
			mismatch(c, "after the faults: want %s, got %s (%v)", labjudge.FormatNexthops(truth), labjudge.FormatNexthops(w.Current()), err)
		} else {
			line += fmt.Sprintf("  settled %5d ms", reached.At.Sub(t0).Milliseconds())
			time.Sleep(2 * th.Interval)
			if bad := w.Always(reached.At, time.Now(), labjudge.Exactly(truth...)); bad != nil {
				mismatch(c, "after the faults: want %s throughout, got %s at +%d ms", labjudge.FormatNexthops(truth), labjudge.FormatNexthops(bad.Nexthops), bad.At.Sub(t0).Milliseconds())
			}
		}

		// Heal.
		h := time.Now()
		for _, f := range faults {
			if err := l.Heal(ctx, f.server.Name); err != nil {
				fmt.Fprintln(out, line)
				return res, fmt.Errorf("soak cycle %d: %w", c, err)
			}
		}
		res.Steps++
		back, err := waitTable(ctx, w, h, opts.Settle, lab.All)
		if err != nil {
			mismatch(c, "after the heal: want both, got %s (%v)", labjudge.FormatNexthops(w.Current()), err)
		} else {
			line += fmt.Sprintf("  healed %5d ms", back.At.Sub(h).Milliseconds())
			// A server that was withdrawn at the heal comes back only after
			// rise healthy checks, an interval apart (a tenth of one for
			// timer jitter).
			min := time.Duration(th.Rise-1)*th.Interval - th.Interval/10
			for _, f := range faults {
				if f.mode.SelfHealing {
					continue
				}
				// Routed at the heal already is a mismatch counted above.
				if early := firstWith(w.During(h, back.At), f.server.Addr); early != nil && !early.At.Before(h) && early.At.Sub(h) < min {
					mismatch(c, "%s back %d ms after the heal, before rise allows (%d ms)", f.server.Name, early.At.Sub(h).Milliseconds(), min.Milliseconds())
				}
			}
		}
		portChange := false
		for _, f := range faults {
			portChange = portChange || f.mode.Mode == lab.PortChange
		}
		line += checkEndpoints(ctx, l, &res, c, portChange)
		fmt.Fprintln(out, line)
		if (c == opts.WarmUp || c%memEvery == 0) && c < opts.Cycles {
			if err := sampleMemory(ctx, l, &res, c, opts.ProfileDir, out); err != nil {
				return res, err
			}
		}
	}

	// The end figures, at rest: the last heal's rise has passed.
	time.Sleep(time.Duration(th.Rise+1) * th.Interval)
	for _, s := range lab.Servers {
		st, err := l.WgbirdStats(ctx, s.Name)
		if err != nil {
			return res, err
		}
		res.End[s.Name] = st
		res.Leaks = append(res.Leaks, leaks(s.Name, res.Start[s.Name], st)...)
	}
	if err := sampleMemory(ctx, l, &res, opts.Cycles, opts.ProfileDir, out); err != nil {
		return res, err
	}
	for _, s := range lab.Servers {
		if x := heapLeak(s.Name, res.Memory[s.Name], opts.WarmUp, opts.HeapSlack); x != "" {
			res.Leaks = append(res.Leaks, x)
		}
	}
	if err := w.Err(); err != nil {
		return res, fmt.Errorf("soak: watching the router's table: %w", err)
	}
	res.Cycles = opts.Cycles
	res.Took = time.Since(start)
	res.Write(out)
	return res, nil
}

// checkEndpoints reads every client's endpoint for the server peer after
// cycle. A client found elsewhere than Lab.Endpoint is recorded and put
// back on it, so that every cycle is judged on its own. Behind the home
// network's NAT the endpoint can look right and be pinned all the same:
// when a server's own packet made the router's mapping on the public port
// (the client's DNAT entry had expired), the client's packets go to that
// server's address; so the router's mapping of that endpoint must lead to
// the VIP too. It returns what the cycle's line says about it ("" when all
// are on the VIP).
func checkEndpoints(ctx context.Context, l *lab.Lab, res *Result, cycle int, portChange bool) string {
	var pins []string
	for _, c := range l.Clients() {
		res.EndpointChecks++
		ep, err := l.ClientEndpoint(ctx, c.Name)
		if err != nil {
			res.Pins = append(res.Pins, Pin{Cycle: cycle, Client: c.Name, Err: err.Error(), PortChange: portChange})
			pins = append(pins, c.Name+" unreadable")
			continue
		}
		pin := Pin{Cycle: cycle, Client: c.Name, Endpoint: ep, PortChange: portChange}
		if ep == l.Endpoint() {
			inside, err := mappedTo(l, c, ep)
			switch {
			case err != nil:
				pin.Err = err.Error()
			case !inside.IsValid() || inside.Addr() == lab.VIP.Addr():
				continue
			default:
				pin.Inside = inside
			}
		}
		res.Pins = append(res.Pins, pin)
		pins = append(pins, pin.short())
		if ep == l.Endpoint() {
			continue // nothing to put back: the mapping goes with its timeout
		}
		if err := l.SetClientEndpoint(ctx, c.Name, l.Endpoint()); err != nil {
			pins = append(pins, "not put back: "+err.Error())
		}
	}
	if len(pins) == 0 {
		return ""
	}
	return "  PINNED " + strings.Join(pins, ", ")
}

// mappedTo returns where the router's NAT sends the client's packets to
// ep: the inside end of its mapping, or the zero AddrPort when there is no
// mapping (the client's next packet makes one to the VIP) or no NAT.
func mappedTo(l *lab.Lab, c lab.Client, ep netip.AddrPort) (netip.AddrPort, error) {
	if l.Config().Routed {
		return netip.AddrPort{}, nil
	}
	ms, err := l.MappingsOf(c.Name)
	if err != nil {
		return netip.AddrPort{}, err
	}
	for _, m := range ms {
		if m.Client.Port() == uint16(c.Port) && m.Public == ep {
			return m.Inside, nil
		}
	}
	return netip.AddrPort{}, nil
}

// healAll heals every server.
func healAll(ctx context.Context, l *lab.Lab) error {
	for _, s := range lab.Servers {
		if err := l.Heal(ctx, s.Name); err != nil {
			return err
		}
	}
	return nil
}

// pickFaults breaks one server, three times in four, or both, each in a
// mode of its own.
func pickFaults(rng *rand.Rand, modes []lab.ModeInfo) []soakFault {
	pick := func(s lab.Server) soakFault { return soakFault{server: s, mode: modes[rng.IntN(len(modes))]} }
	if rng.IntN(4) == 0 {
		return []soakFault{pick(lab.Servers[0]), pick(lab.Servers[1])}
	}
	return []soakFault{pick(lab.Servers[rng.IntN(len(lab.Servers))])}
}

// soakTruth is the router's nexthop set once the faults have had their
// effect: every server except those broken in a mode that does not heal
// by itself.
func soakTruth(faults []soakFault) []netip.Addr {
	var truth []netip.Addr
	for _, s := range lab.Servers {
		ok := true
		for _, f := range faults {
			if f.server == s && !f.mode.SelfHealing {
				ok = false
			}
		}
		if ok {
			truth = append(truth, s.Addr)
		}
	}
	return truth
}

// firstWith returns the first state that has a, or nil.
func firstWith(changes []labjudge.Change, a netip.Addr) *labjudge.Change {
	for _, c := range changes {
		if slices.Contains(c.Nexthops, a) {
			return &c
		}
	}
	return nil
}

func waitTable(ctx context.Context, w *labjudge.Watcher, since time.Time, timeout time.Duration, ok func([]netip.Addr) bool) (labjudge.Change, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return w.WaitFor(ctx, since, ok)
}

// leaks compares a wgbird's figures at the end of a soak with those at
// the start.
func leaks(server string, start, end labproc.ProcStats) []string {
	if start.Pid != end.Pid {
		return []string{fmt.Sprintf("%s: wgbird was restarted during the soak (pid %d, now %d): it crashed", server, start.Pid, end.Pid)}
	}
	var out []string
	if end.Goroutines > start.Goroutines+GoroutineSlack {
		out = append(out, fmt.Sprintf("%s: goroutines %d -> %d", server, start.Goroutines, end.Goroutines))
	}
	if end.FDs > start.FDs+FDSlack {
		out = append(out, fmt.Sprintf("%s: fds %d -> %d", server, start.FDs, end.FDs))
	}
	if end.RSS > start.RSS+RSSSlack {
		out = append(out, fmt.Sprintf("%s: RSS %.1f -> %.1f MiB", server, mib(start.RSS), mib(end.RSS)))
	}
	return out
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func kib(b int64) float64 { return float64(b) / (1 << 10) }

// sampleMemory takes each wgbird's memory after cycle (0: before the first),
// prints it, and keeps each heap profile in dir if set.
func sampleMemory(ctx context.Context, l *lab.Lab, res *Result, cycle int, dir string, out io.Writer) error {
	line := fmt.Sprintf("memory after cycle %d:", cycle)
	for i, s := range lab.Servers {
		pid := l.WgbirdPid(s.Name)
		if pid == 0 {
			return fmt.Errorf("soak: wgbird is not running on %s", s.Name)
		}
		h, err := quietHeap(ctx, l, s.Name)
		if err != nil {
			return fmt.Errorf("soak: %w", err)
		}
		m, err := labproc.ReadMemStatus(pid)
		if err != nil {
			return fmt.Errorf("soak: %w", err)
		}
		if dir != "" {
			path := filepath.Join(dir, fmt.Sprintf("heap-%s-%04d.pb.gz", s.Name, cycle))
			if err := SaveWgbirdHeapProfile(ctx, l, s.Name, path); err != nil {
				return fmt.Errorf("soak: %w", err)
			}
		}
		res.Memory[s.Name] = append(res.Memory[s.Name], MemSample{Cycle: cycle, Mem: m, Heap: h})
		if i > 0 {
			line += ";"
		}
		line += fmt.Sprintf(" %s heap in use %.0f KiB (live %.0f), idle %.0f KiB, stacks %.0f KiB, RSS %.1f MiB (anon %.1f, file %.1f), %d threads",
			s.Name, kib(h.Inuse), kib(h.Live), kib(h.Idle()), kib(h.StackInuse), mib(m.RSS), mib(m.Anon), mib(m.File), m.Threads)
	}
	fmt.Fprintln(out, line)
	return nil
}

// heapSamples is how many times a checkpoint reads a wgbird's heap, and
// heapSampleGap the pause between reads.
const (
	heapSamples   = 3
	heapSampleGap = 300 * time.Millisecond
)

// quietHeap reads server's heap heapSamples times and keeps the smallest
// live heap and heap in use of them. A single read catches whatever is in
// flight at that instant (a BIRD query's 64 KiB read buffer, an exec
// check's output, the group's datagrams): CI once saw the live heap 117
// KiB up after 32 cycles and back down by cycle 100 of a longer run. What
// leaks is held at every read, so the minimum still grows with it.
func quietHeap(ctx context.Context, l *lab.Lab, server string) (HeapStats, error) {
	var best HeapStats
	for i := range heapSamples {
		if i > 0 {
			select {
			case <-ctx.Done():
				return best, ctx.Err()
			case <-time.After(heapSampleGap):
			}
		}
		h, err := WgbirdHeap(ctx, l, server)
		if err != nil {
			return HeapStats{}, err
		}
		if i == 0 {
			best = h
			continue
		}
		if h.Live < best.Live {
			// The other figures of the quietest read go with it.
			inuse := min(best.Inuse, h.Inuse)
			best = h
			best.Inuse = inuse
		} else {
			best.Inuse = min(best.Inuse, h.Inuse)
		}
	}
	return best, nil
}

// heapLeak compares a wgbird's heap after the warm-up with the end's: ""
// when neither the heap in use nor the live heap grew by more than slack.
// Both are read right after a forced GC (the least of heapSamples reads:
// quietHeap): the live heap is what wgbird holds, to the byte; the heap in use adds the free space of the spans
// those objects are in, which a leak can fill before it grows.
func heapLeak(server string, samples []MemSample, warmUp int, slack int64) string {
	base, ok := sampleAt(samples, warmUp)
	if !ok || len(samples) == 0 {
		return fmt.Sprintf("%s: no heap figures after the warm-up (cycle %d)", server, warmUp)
	}
	end := samples[len(samples)-1]
	inuse, live := end.Heap.Inuse-base.Heap.Inuse, end.Heap.Live-base.Heap.Live
	if inuse <= slack && live <= slack {
		return ""
	}
	return fmt.Sprintf("%s: from cycle %d to %d, heap in use %.0f -> %.0f KiB (%+.0f), live heap %.0f -> %.0f KiB (%+.0f); slack %.0f KiB",
		server, base.Cycle, end.Cycle, kib(base.Heap.Inuse), kib(end.Heap.Inuse), kib(inuse),
		kib(base.Heap.Live), kib(end.Heap.Live), kib(live), kib(slack))
}

// sampleAt returns the sample taken after cycle.
func sampleAt(samples []MemSample, cycle int) (MemSample, bool) {
	for _, m := range samples {
		if m.Cycle == cycle {
			return m, true
		}
	}
	return MemSample{}, false
}

// Write prints the summary: mismatches, modes and each wgbird's figures.
func (r Result) Write(w io.Writer) {
	fmt.Fprintf(w, "soak: seed %d: %d cycles, %d steps, %d mismatches, in %s\n", r.Seed, r.Cycles, r.Steps, len(r.Mismatches), r.Took.Round(time.Second))
	var modes []string
	for _, m := range lab.Modes {
		if n := r.Modes[m.Mode]; n > 0 {
			modes = append(modes, fmt.Sprintf("%s %d", m.Mode, n))
		}
	}
	fmt.Fprintf(w, "modes: %s\n", strings.Join(modes, ", "))
	for _, s := range lab.Servers {
		a, b := r.Start[s.Name], r.End[s.Name]
		fmt.Fprintf(w, "wgbird %s: goroutines %d -> %d, fds %d -> %d, RSS %.1f -> %.1f MiB\n",
			s.Name, a.Goroutines, b.Goroutines, a.FDs, b.FDs, mib(a.RSS), mib(b.RSS))
		if ms := r.Memory[s.Name]; len(ms) > 0 {
			col := func(f func(MemSample) string) string {
				var out []string
				for _, m := range ms {
					out = append(out, f(m))
				}
				return strings.Join(out, " / ")
			}
			fmt.Fprintf(w, "wgbird %s: after cycle %s: heap in use %s KiB, live heap %s KiB, RSS %s MiB (anonymous %s MiB)\n", s.Name,
				col(func(m MemSample) string { return fmt.Sprint(m.Cycle) }),
				col(func(m MemSample) string { return fmt.Sprintf("%.0f", kib(m.Heap.Inuse)) }),
				col(func(m MemSample) string { return fmt.Sprintf("%.0f", kib(m.Heap.Live)) }),
				col(func(m MemSample) string { return fmt.Sprintf("%.1f", mib(m.Mem.RSS)) }),
				col(func(m MemSample) string { return fmt.Sprintf("%.1f", mib(m.Mem.Anon)) }))
		}
	}
	if r.EndpointChecks > 0 {
		fmt.Fprintf(w, "endpoints: %d of %d client endpoint checks (one per client after every cycle) off the service address (target 0), %d of them after a port change\n", len(r.Pins), r.EndpointChecks, len(r.Pins)-len(r.Failing()))
	}
	for _, m := range r.Mismatches {
		fmt.Fprintf(w, "MISMATCH %s\n", m)
	}
	for _, p := range r.Pins {
		fmt.Fprintf(w, "PINNED %s\n", p)
	}
	for _, l := range r.Leaks {
		fmt.Fprintf(w, "NOT FLAT %s\n", l)
	}
	if r.OK() {
		fmt.Fprintf(w, "soak: the router's table matched the truth at every step; goroutines, fds and RSS flat (slack %d, %d, %d MiB); heap in use and live heap flat from cycle %d (slack %d KiB)\n",
			GoroutineSlack, FDSlack, RSSSlack>>20, r.WarmUp, r.HeapSlack>>10)
	}
}
