package daemon

import (
	"context"
	"time"

	"github.com/wgbird/wgbird/internal/bird"
)

// BIRDStatusReader is the part of BIRD's socket the reload watcher uses;
// a Deps.BIRD that has it gets one (bird.Client does).
type BIRDStatusReader interface {
	ReadStatus(ctx context.Context) (bird.Status, error)
}

var _ BIRDStatusReader = (*bird.Client)(nil)

// watchPeriod is how often the reload watcher asks BIRD: every service's
// fast_interval, the shortest of them.
func (d *Daemon) watchPeriod() time.Duration {
	var p time.Duration
	for _, s := range d.services {
		if p == 0 || s.cfg.FastInterval < p {
			p = s.cfg.FastInterval
		}
	}
	return max(p, 10*time.Millisecond)
}

// watchBIRD asks BIRD for its status every period and, when its last
// reboot or reconfiguration time changed (a restart, or `birdc configure`,
// which sets every protocol back to the config file's state and so
// withdraws the services wgbird announces), tells every service to
// correct BIRD at once. One `show status` on the persistent connection
// costs BIRD and wgbird some tens of microseconds. Errors are left to the
// service loops, which read BIRD every pass and report them.
func (d *Daemon) watchBIRD(ctx context.Context, st BIRDStatusReader, period time.Duration) {
	t := time.NewTimer(untilTick(time.Now(), period))
	defer t.Stop()
	var last string
	for {
		sctx, cancel := context.WithTimeout(ctx, max(period, time.Second))
		s, err := st.ReadStatus(sctx)
		cancel()
		if err == nil {
			g := s.Generation()
			if last != "" && g != last {
				d.log.Info("BIRD restarted or reloaded its configuration: correcting its protocols now",
					"last_reboot", s.LastReboot, "last_reconfiguration", s.LastReconfig)
				for _, sv := range d.services {
					sv.birdReloaded()
				}
			}
			last = g
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			t.Reset(untilTick(time.Now(), period))
		}
	}
}

// untilTick returns the wait from now to the next multiple of period on
// the clock, at least half a period away. The reload watcher and every
// liveness check wait for the same instants, so one wake-up of the
// process serves all of them: an idle wgbird's cost is mostly the
// scheduler and sysmon waking, per event, not the reads (issue 14).
func untilTick(now time.Time, period time.Duration) time.Duration {
	if period <= 0 {
		return 0
	}
	next := now.Truncate(period).Add(period)
	if next.Sub(now) < period/2 {
		next = next.Add(period)
	}
	return next.Sub(now)
}
