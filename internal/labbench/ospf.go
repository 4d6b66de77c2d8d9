package labbench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/wgbird/wgbird/internal/lab"
)

// SeriesOSPF is wgbird at its defaults with the servers announcing the VIP
// prefix over OSPF instead of BGP (wgbird-lab --routing ospf), for
// OSPFModes. It brings up a lab of its own.
const SeriesOSPF BenchSeries = "ospf"

// OSPFModes are the modes the OSPF series measures.
var OSPFModes = []lab.Mode{lab.Hang, lab.Kill, lab.Drain}

// ospfSettle is how long a fault waits after the route came back: a router
// ignores a newer instance of an LSA that arrives within MinLSArrival (1 s)
// of the last and takes it only from the retransmission (2 s later in the
// lab), so a fault right after a return would measure that instead of the
// withdrawal. Real faults do not follow a return that closely; README says
// what a flap within a second costs.
const ospfSettle = 1500 * time.Millisecond

// OSPF lab's dir suffix and prefix, apart from the BGP bench lab's.
const (
	ospfBenchDirSuffix = "-ospf"
	ospfBenchPrefix    = "wgob"
)

func (b *bench) runOSPF(ctx context.Context) SeriesResult {
	th := b.cfg.Lab.Thresholds.Effective()
	sr := SeriesResult{Series: SeriesOSPF,
		Setup: fmt.Sprintf("a lab of its own (`--routing ospf`): every node in OSPF area 0 on br0 (hello 1 s, dead 3 s, BFD), each server exporting %s as an external route, the router merging them (`ecmp yes; merge external yes`); wgbird on %s as in the wgbird series (interval %s, rise %d, fall %d); each fault %s or more after the route came back (MinLSArrival); %d repetitions per mode.",
			lab.Protocol, b.srv.Name, th.Interval, th.Rise, th.Fall, FormatDuration(ospfSettle), b.cfg.RefReps)}
	var modes []lab.Mode
	for _, m := range b.cfg.Modes {
		if slices.Contains(OSPFModes, m) {
			modes = append(modes, m)
		}
	}
	if len(modes) == 0 {
		sr.Skipped = "none of its modes (hang, kill, drain) selected"
		return sr
	}
	lc := b.cfg.Lab
	lc.Routing = lab.RoutingOSPF
	lc.Dir += ospfBenchDirSuffix
	lc.Prefix = ospfBenchPrefix
	l, err := lab.Up(ctx, lc)
	if err != nil {
		sr.Skipped = "bringing the OSPF lab up: " + err.Error()
		return sr
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := l.Down(dctx); err != nil {
			fmt.Fprintf(b.out, "   tearing the OSPF lab down: %v\n", err)
		}
	}()
	if err := l.WaitRouted(ctx, time.Minute); err != nil {
		sr.Skipped = err.Error()
		return sr
	}
	w, err := l.Watch()
	if err != nil {
		sr.Skipped = err.Error()
		return sr
	}
	defer w.Close()
	ob := &bench{cfg: b.cfg, l: l, w: w, srv: b.srv, out: b.out}
	server := b.srv.Name
	if err := ob.benchStartWgbird(ctx, server, false, false); err != nil {
		sr.Skipped = err.Error()
		return sr
	}
	for _, mode := range modes {
		if ctx.Err() != nil {
			break
		}
		sr.Modes = append(sr.Modes, ob.runMode(ctx, SeriesOSPF, mode, b.cfg.RefReps, true,
			func(ctx context.Context) (time.Time, error) {
				if err := sleepCtx(ctx, ospfSettle); err != nil {
					return time.Time{}, err
				}
				return l.Fail(ctx, server, mode)
			},
			func(ctx context.Context) error { return l.Heal(ctx, server) }))
	}
	if err := w.Err(); err != nil && sr.Skipped == "" {
		sr.Skipped = "route watcher: " + err.Error()
	}
	return sr
}
