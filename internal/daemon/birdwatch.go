package daemon

import (
	"context"
	"time"

	"github.com/wgbird/wgbird/internal/bird"
	"github.com/wgbird/wgbird/internal/tick"
)

// BIRDStatusReader is the part of BIRD's socket the reload watcher uses;
// a Deps.BIRD that has it gets one (bird.Client does).
type BIRDStatusReader interface {
	ReadStatus(ctx context.Context) (bird.Status, error)
}

// ReloadSigns tells when BIRD may have restarted or reloaded
// (bird.Reloads: its socket created, its configuration file opened).
type ReloadSigns interface {
	Next(ctx context.Context) (bird.Sign, error)
	Files() []string
	Close() error
}

var (
	_ BIRDStatusReader = (*bird.Client)(nil)
	_ ReloadSigns      = (*bird.Reloads)(nil)
)

// After a sign, the watcher asks BIRD every signEvery until its
// generation changes, for at most signFor: a `configure` is done in
// milliseconds, a restarting BIRD may take seconds to answer.
const (
	signEvery = 5 * time.Millisecond
	signFor   = 5 * time.Second
)

// retrySigns is how often to try again to watch for signs that could not
// be watched (BIRD not running yet when wgbird started); a variable for
// the tests.
var retrySigns = 30 * time.Second

// watchPeriod is how often the reload watcher asks BIRD without signs:
// every service's fast_interval, the shortest of them.
func (d *Daemon) watchPeriod() time.Duration {
	var p time.Duration
	for _, s := range d.services {
		if p == 0 || s.cfg.FastInterval < p {
			p = s.cfg.FastInterval
		}
	}
	return max(p, 10*time.Millisecond)
}

// watchBIRD notices a BIRD restart or `birdc configure`, either of which
// sets every protocol back to the config file's state and so withdraws
// the services wgbird announces, and tells every service to correct BIRD
// at once. It asks BIRD `show status` and compares the last reboot and
// reconfiguration times. With signs (inotify on BIRD's socket and
// configuration file) it asks right after each sign, every signEvery
// until the times change, and otherwise right after the services' passes
// read BIRD's protocols (every interval): an idle wgbird then wakes for
// BIRD only with its passes instead of every fast_interval (issue 14).
// A change seen without a sign (a `configure` of another file,
// `configure undo`) switches it to asking every fast_interval for good;
// signs that cannot start or that stop, to asking every fast_interval
// while it tries them again every retrySigns; each is logged once. One
// `show status` on the persistent connection costs BIRD and wgbird some
// tens of microseconds. Errors are left to the service loops, which read
// BIRD every pass and report them.
func (d *Daemon) watchBIRD(ctx context.Context, st BIRDStatusReader, fast time.Duration) {
	var signs chan bird.Sign
	var lost chan error
	// stop ends the watch in use, if any: it closes the source and waits
	// for the goroutine reading it.
	stop := func() {}
	defer func() { stop() }()
	// start starts watching for signs. It fails when BIRD is not running
	// yet or its configuration file is not found; the watcher then asks
	// every fast_interval and tries again every retrySigns.
	var retryAt time.Time
	start := func(first bool) {
		retryAt = time.Now().Add(retrySigns)
		src, err := d.deps.BIRDReloads(ctx)
		if err != nil {
			if first {
				d.log.Warn("cannot watch BIRD's socket and configuration file for reloads: asking BIRD every fast_interval instead, and trying again every "+retrySigns.String(),
					"every", fast, "error", err)
			}
			return
		}
		done := make(chan struct{})
		stop = func() { src.Close(); <-done; stop = func() {} }
		// The loop forgets signs and lost when it stops trusting them; the
		// goroutine keeps its own (lost is buffered for its one error).
		sc, lc := make(chan bird.Sign, 1), make(chan error, 1)
		signs, lost = sc, lc
		d.log.Info("watching BIRD's socket and configuration file for reloads", "files", src.Files())
		go func() {
			defer close(done)
			for {
				s, err := src.Next(ctx)
				if err == nil && s.Lost != nil {
					err = s.Lost
				}
				if err != nil {
					lc <- err
					return
				}
				select {
				case sc <- s:
				default: // one is pending: it serves this one too
				}
			}
		}()
	}
	retry := d.deps.BIRDReloads != nil // false once signs proved unreliable
	if retry {
		start(true)
	}

	// t paces the asking without signs.
	t := time.NewTimer(tick.Until(time.Now(), fast))
	defer t.Stop()
	if signs != nil {
		t.Stop()
	}
	var last string
	var now bird.Status
	// read asks BIRD for its generation and reports whether it changed.
	read := func() bool {
		sctx, cancel := context.WithTimeout(ctx, max(fast, time.Second))
		s, err := st.ReadStatus(sctx)
		cancel()
		if err != nil {
			return false
		}
		g := s.Generation()
		changed := last != "" && g != last
		last, now = g, s
		if changed {
			for _, sv := range d.services {
				sv.birdReloaded()
			}
		}
		return changed
	}
	read()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.asked:
			if signs == nil {
				continue // asking every fast_interval anyway
			}
			if read() {
				d.log.Warn("BIRD restarted or reloaded its configuration without a sign wgbird watches for (another configuration file, or configure undo): correcting its protocols now, and asking BIRD every fast_interval from now on",
					"every", fast, "last_reboot", now.LastReboot, "last_reconfiguration", now.LastReconfig)
				stop()
				signs, lost, retry = nil, nil, false
				t.Reset(tick.Until(time.Now(), fast))
			}
		case <-t.C:
			if read() {
				d.log.Info("BIRD restarted or reloaded its configuration: correcting its protocols now",
					"last_reboot", now.LastReboot, "last_reconfiguration", now.LastReconfig)
			}
			if retry && signs == nil && !time.Now().Before(retryAt) {
				if start(false); signs != nil {
					continue // the timer rests while signs come
				}
			}
			t.Reset(tick.Until(time.Now(), fast))
		case s := <-signs:
			// Ask until the generation changes: BIRD answers `show
			// status` after it has applied the configuration it read.
			end := time.Now().Add(signFor)
			changed := read()
			for !changed && time.Now().Before(end) {
				select {
				case <-ctx.Done():
					return
				case <-time.After(signEvery):
				}
				changed = read()
			}
			if changed {
				d.log.Info("BIRD restarted or reloaded its configuration: correcting its protocols now",
					"sign", s.What, "last_reboot", now.LastReboot, "last_reconfiguration", now.LastReconfig)
			}
		case err := <-lost:
			if ctx.Err() != nil {
				return
			}
			// The directory of the socket or the file removed, events
			// lost, or a new BIRD's file not found: asking every
			// fast_interval, trying again every retrySigns.
			d.log.Warn("stopped watching BIRD's socket and configuration file: asking BIRD every fast_interval, and trying again every "+retrySigns.String(),
				"every", fast, "error", err)
			stop()
			signs, lost = nil, nil
			retryAt = time.Now().Add(retrySigns)
			t.Reset(tick.Until(time.Now(), fast))
		}
	}
}
