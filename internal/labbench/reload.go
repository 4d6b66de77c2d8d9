package labbench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"time"

	"github.com/wgbird/wgbird/internal/lab"
	"github.com/wgbird/wgbird/internal/labjudge"
)

// ReloadResult is what `birdc configure` on a healthy server costs: how
// long its nexthop is missing at the router each time.
type ReloadResult struct {
	Skipped string `json:"skipped,omitempty"`
	// Blips are the times the nexthop was missing, one per configure; 0
	// when the router never lost it.
	Blips []time.Duration `json:"blips_ns,omitempty"`
	// Errs counts repetitions that measured nothing.
	Errs int `json:"errs,omitempty"`
}

// Stats summarizes the blips.
func (r ReloadResult) Stats() Stats { return Summarize(r.Blips) }

// reloadGone bounds the wait for the nexthop to go after a configure: a
// reload that wgbird corrected before the router noticed leaves it.
const reloadGone = time.Second

// runReload runs `birdc configure` reps times on the healthy server,
// which resets its static protocol to the config file's disabled, and
// measures how long the router misses its nexthop until wgbird enables it
// again.
func (b *bench) runReload(ctx context.Context) ReloadResult {
	var res ReloadResult
	server := b.srv.Name
	if err := b.stopExaBGP(ctx); err != nil {
		res.Skipped = err.Error()
		return res
	}
	if err := b.l.Heal(ctx, server); err != nil {
		res.Skipped = err.Error()
		return res
	}
	if err := b.benchStartWgbird(ctx, server, false, false); err != nil {
		res.Skipped = err.Error()
		return res
	}
	iv := b.cfg.Lab.Thresholds.Effective().Interval
	for i := range b.cfg.Reps {
		blip, err := b.reloadOnce(ctx, server, iv)
		if err != nil {
			res.Errs++
			fmt.Fprintf(b.out, "   reload  %2d/%-2d error: %v\n", i+1, b.cfg.Reps, err)
			if ctx.Err() != nil || res.Errs >= 3 && len(res.Blips) == 0 {
				break
			}
			continue
		}
		res.Blips = append(res.Blips, blip)
		fmt.Fprintf(b.out, "   reload  %2d/%-2d nexthop missing %s\n", i+1, b.cfg.Reps, FormatDuration(blip))
	}
	return res
}

func (b *bench) reloadOnce(ctx context.Context, server string, iv time.Duration) (time.Duration, error) {
	addr := b.srv.Addr
	wctx, cancel := context.WithTimeout(ctx, returnBound)
	_, err := b.w.WaitFor(wctx, time.Now(), lab.All)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("not routed via both servers before the reload: %w", err)
	}
	// Any phase of wgbird's timers.
	if err := sleepCtx(ctx, rand.N(iv)); err != nil {
		return 0, err
	}
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, "birdc", "-s", b.l.BirdSocket(server), "configure").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("birdc configure: %v: %s", err, strings.TrimSpace(string(out)))
	}
	wctx, cancel = context.WithTimeout(ctx, reloadGone)
	gone, err := b.w.WaitFor(wctx, t0, labjudge.Lacks(addr))
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, nil // never missing
	}
	wctx, cancel = context.WithTimeout(ctx, returnBound)
	back, err := b.w.WaitFor(wctx, gone.At, labjudge.Has(addr))
	cancel()
	if err != nil {
		return 0, fmt.Errorf("nexthop not back within %s after the reload", returnBound)
	}
	return back.At.Sub(gone.At), nil
}

// DetectionRow is one row of issue 14's table: a figure, its target and
// the command that measures it again.
type DetectionRow struct {
	What, Measured, Target, Verdict, Command string
}

// DetectionRows judges what this run measured of issue 14's targets:
// the hang, the idle cost, the read of 10,000 peers (Go benchmarks) and
// the BIRD reload blip. Rows whose figures were not measured are left
// out.
func (r *BenchResult) DetectionRows(module string) []DetectionRow {
	const again = "sudo bin/wgbird-lab bench --wgbird bin/wgbird "
	var out []DetectionRow
	if mr, ok := r.SeriesOf(SeriesWgbird).Mode(lab.Hang); ok && mr.NA == "" {
		st := mr.WithdrawStats()
		k, n := mr.Counts()
		out = append(out, DetectionRow{
			What:     "hung wireguard-go withdrawn (p50, p95)",
			Measured: fmt.Sprintf("%s, %s (%d/%d)", durOrDash(st.P50, st.N), durOrDash(st.P95, st.N), k, n),
			Target:   "≤ 0.7 s, ≤ 1.0 s",
			Verdict:  verdict(st.N > 0 && k == n && st.P50 <= 700*time.Millisecond && st.P95 <= time.Second),
			Command:  again + "--series wgbird --modes hang --reps 12",
		})
	}
	if id := r.Idle; id != nil && id.Skipped == "" {
		cmd := again + "--series idle"
		out = append(out,
			DetectionRow{
				What:     fmt.Sprintf("idle CPU, one service, %d peers, interval %s, %s", id.Peers, id.Interval, id.Window.Round(time.Second)),
				Measured: fmt.Sprintf("%.3f %%", 100*id.CPUShare()), Target: "< 0.1 %",
				Verdict: verdict(id.CPUShare() < 0.001), Command: cmd,
			},
			DetectionRow{
				What:     "anonymous memory, same",
				Measured: fmt.Sprintf("%.1f MB", float64(id.RSSAnon)/1e6), Target: "< 5 MB",
				Verdict: verdict(id.RSSAnon < 5e6), Command: cmd,
			},
			DetectionRow{
				What:     "peak RSS, same",
				Measured: fmt.Sprintf("%.1f MB", float64(id.PeakRSS)/1e6), Target: "< 14 MB",
				Verdict: verdict(id.PeakRSS < 14e6), Command: cmd,
			})
	}
	for _, name := range []string{"BenchmarkSummary10kPeers", "BenchmarkDevice10kPeers"} {
		for _, gb := range r.GoBench {
			if gb.Name != name || !strings.HasSuffix(gb.Pkg, "/internal/wireguard") {
				continue
			}
			what := "one device read, 10,000 peers (wgbird's part: an in-process UAPI server)"
			if name == "BenchmarkDevice10kPeers" {
				what = "one device read, 10,000 peers (a real wireguard-go, its time to answer included)"
			}
			ok := gb.NsPerOp <= 10e6 && gb.BytesPerOp >= 0 && gb.BytesPerOp <= 1<<20
			out = append(out, DetectionRow{
				What:     what,
				Measured: fmt.Sprintf("%s, %s, %d allocs", formatNs(gb.NsPerOp), formatBytes(gb.BytesPerOp), gb.AllocsPerOp),
				Target:   "≤ 10 ms, ≤ 1 MiB", Verdict: verdict(ok), Command: gb.Command(module),
			})
		}
	}
	if rl := r.Reload; rl != nil && rl.Skipped == "" && len(rl.Blips) > 0 {
		st := rl.Stats()
		out = append(out, DetectionRow{
			What:     "`birdc configure` on a healthy server: its nexthop missing at the router (p50, max)",
			Measured: fmt.Sprintf("%s, %s (%d reloads)", FormatDuration(st.P50), FormatDuration(st.Max), st.N),
			Target:   "≤ 100 ms, ≤ 150 ms",
			Verdict:  verdict(st.P50 <= 100*time.Millisecond && st.Max <= 150*time.Millisecond),
			Command:  again + "--series reload --reps 12",
		})
	}
	return out
}
