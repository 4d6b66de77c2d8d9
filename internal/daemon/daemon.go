package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/api"
	"github.com/wgbird/wgbird/internal/bird"
	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/health"
	"github.com/wgbird/wgbird/internal/link"
)

// Daemon runs every configured service against BIRD.
type Daemon struct {
	cfg      *config.Config
	deps     Deps
	log      *slog.Logger
	services []*service
	byName   map[string]*service

	birdMu sync.Mutex
	bird   api.BIRDStatus

	// readMu guards read, the latest `show protocols` (in flight or done).
	readMu sync.Mutex
	read   *protoRead

	// asked is signalled after each `show protocols` (buffered 1,
	// coalescing): the reload watcher asks `show status` then, in the
	// same wake-up as the services' passes.
	asked chan struct{}
}

// protoRead is one `show protocols`, shared by the passes it serves. It
// is reused for the next read once done and unwatched, so the common
// pass allocates nothing for the sharing.
type protoRead struct {
	started  time.Time
	finished bool
	waiters  int
	done     chan struct{} // made by the first waiter, closed when finished
	protos   []bird.Protocol
	err      error
}

// BIRDStatus returns the latest state of BIRD's control socket, from the
// services' latest `show protocols`.
func (d *Daemon) BIRDStatus() api.BIRDStatus {
	d.birdMu.Lock()
	defer d.birdMu.Unlock()
	return d.bird
}

// protocols returns BIRD's protocols for a pass that began at since. A
// read that started at or after since is as fresh as the pass, so the
// services' passes of one interval share one `show protocols`: a caller
// waits for the read in flight if it started late enough, or starts the
// next. The protocols returned are shared: callers only read them.
func (d *Daemon) protocols(ctx context.Context, since time.Time) ([]bird.Protocol, error) {
	d.readMu.Lock()
	if r := d.read; r != nil && !r.started.Before(since) {
		if !r.finished {
			if r.done == nil {
				r.done = make(chan struct{})
			}
			r.waiters++
			d.readMu.Unlock()
			select {
			case <-r.done:
			case <-ctx.Done():
			}
			d.readMu.Lock()
			r.waiters--
			if !r.finished {
				d.readMu.Unlock()
				return nil, ctx.Err()
			}
		}
		protos, err := r.protos, r.err
		d.readMu.Unlock()
		return protos, err
	}
	r := d.read
	if r == nil || !r.finished || r.waiters > 0 {
		r = &protoRead{}
	}
	*r = protoRead{started: time.Now()}
	d.read = r
	d.readMu.Unlock()

	protos, err := d.readProtocols(ctx)
	d.readMu.Lock()
	r.protos, r.err, r.finished = protos, err, true
	if r.done != nil {
		close(r.done)
	}
	d.readMu.Unlock()
	return protos, err
}

// readProtocols reads BIRD's protocols and records how BIRD answered. The
// version is asked for when BIRD first answers and after every recovery,
// so an upgraded BIRD shows its new version.
func (d *Daemon) readProtocols(ctx context.Context) ([]bird.Protocol, error) {
	start := time.Now()
	protos, err := d.deps.BIRD.Protocols(ctx)
	rtt := time.Since(start)

	d.birdMu.Lock()
	needVersion := err == nil && (!d.bird.Reachable || d.bird.Version == "")
	d.bird.CheckedAt = time.Now()
	if err != nil {
		d.bird.Reachable, d.bird.Error, d.bird.Version = false, err.Error(), ""
	} else {
		d.bird.Reachable, d.bird.Error, d.bird.RTT = true, "", rtt
	}
	d.birdMu.Unlock()

	if needVersion {
		if v, verr := d.deps.BIRD.Status(ctx); verr == nil {
			d.birdMu.Lock()
			d.bird.Version = v
			d.birdMu.Unlock()
		}
	}
	select {
	case d.asked <- struct{}{}:
	default:
	}
	return protos, err
}

// New returns a daemon for cfg. deps.BIRD, deps.WireGuard and deps.Exec
// must be set; Links defaults to a link.Reader (netlink in the current
// namespace, its socket closed with the process). It
// builds everything that can fail before anything touches BIRD: a probe
// that cannot be created is a *ProbeError.
func New(cfg *config.Config, deps Deps) (*Daemon, error) {
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.Links == nil {
		deps.Links = &link.Reader{}
	}
	d := &Daemon{cfg: cfg, deps: deps, log: deps.Log, byName: map[string]*service{}, asked: make(chan struct{}, 1)}
	d.bird.Socket = cfg.BIRD.Socket
	for _, sc := range cfg.Services {
		s, err := newService(sc, &d.deps, d.protocols)
		if err != nil {
			return nil, err
		}
		d.services = append(d.services, s)
		d.byName[sc.Name] = s
	}
	return d, nil
}

// Run runs until ctx ends or a service hits a configuration error (such as
// a protocol BIRD does not know). ready is called once every service has
// made its first check and reconciled BIRD (or found it unreachable).
func (d *Daemon) Run(ctx context.Context, ready func()) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var wg sync.WaitGroup
	defer wg.Wait()

	if d.deps.Subscribe != nil {
		events := make(chan link.Event, 64)
		wg.Add(2)
		go func() { defer wg.Done(); d.deps.Subscribe(ctx, d.log, events) }()
		go func() { defer wg.Done(); d.dispatch(ctx, events) }()
	}

	st := d.deps.BIRDStatus
	if st == nil {
		st, _ = d.deps.BIRD.(BIRDStatusReader)
	}
	if st != nil && len(d.services) > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); d.watchBIRD(ctx, st, d.watchPeriod()) }()
	}

	var pending sync.WaitGroup
	pending.Add(len(d.services))
	go func() {
		pending.Wait()
		if ctx.Err() == nil && ready != nil {
			ready()
		}
	}()
	for _, s := range d.services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			if err := s.run(ctx, func() { once.Do(pending.Done) }); err != nil {
				cancel(err)
			}
			once.Do(pending.Done)
		}()
	}
	<-ctx.Done()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// dispatch wakes the services an event concerns. Address events carry only
// an index, so they wake services whose link index matches or is unknown.
func (d *Daemon) dispatch(ctx context.Context, events <-chan link.Event) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			for _, s := range d.services {
				if s.concerns(ev) {
					s.notify()
				}
			}
		}
	}
}

// Services returns the configured service names in order.
func (d *Daemon) Services() []string {
	names := make([]string, len(d.services))
	for i, s := range d.services {
		names[i] = s.cfg.Name
	}
	return names
}

// Status returns a snapshot of every service.
func (d *Daemon) Status() []api.ServiceStatus {
	out := make([]api.ServiceStatus, len(d.services))
	for i, s := range d.services {
		out[i] = s.Status()
		if d.deps.Continuity != nil {
			out[i].Continuity = d.deps.Continuity.Status(s.cfg.Name)
		}
	}
	return out
}

// SetDrain drains (d non-nil) or undrains (nil) the named services, all
// of them when names is empty. The change takes effect at once.
func (d *Daemon) SetDrain(names []string, dr *api.Drain) error {
	targets, err := d.lookup(names)
	if err != nil {
		return err
	}
	for _, s := range targets {
		if dr == nil {
			s.log.Info("undrain requested")
		} else {
			s.log.Info("drain requested", "reason", dr.Reason, "persistent", dr.Persist)
		}
		s.setDrain(dr)
	}
	return nil
}

func (d *Daemon) lookup(names []string) ([]*service, error) {
	if len(names) == 0 {
		return d.services, nil
	}
	var out []*service
	for _, n := range names {
		s, ok := d.byName[n]
		if !ok {
			return nil, fmt.Errorf("no service %q (configured: %v)", n, d.Services())
		}
		out = append(out, s)
	}
	return out, nil
}

// Withdraw disables every controlled protocol of every service, for a
// system shutdown. It logs and returns the first error.
func (d *Daemon) Withdraw(ctx context.Context, reason string) error {
	var first error
	for _, s := range d.services {
		s.log.Info("withdrawing", "reason", reason)
		for _, p := range s.cfg.Protocols {
			if err := d.deps.BIRD.Disable(ctx, p); err != nil {
				s.log.Error("withdrawing failed", "protocol", p, "err", err)
				if first == nil {
					first = err
				}
			}
		}
		s.setState(health.Transition{To: health.Withdrawn, Detail: reason})
	}
	return first
}

// Stop applies the configured stop behaviour once Run has returned:
// withdraw and wait for the router on a system shutdown, and by default
// leave BIRD as it is on a plain stop, so an upgrade moves no clients.
func (d *Daemon) Stop(ctx context.Context, systemStopping bool) error {
	sh := d.cfg.Shutdown
	switch {
	case systemStopping && sh.OnSystemShutdown == config.Withdraw:
		err := d.Withdraw(ctx, "system is shutting down")
		d.log.Info("waiting for the router to converge", "delay", sh.Delay)
		select {
		case <-time.After(sh.Delay):
		case <-ctx.Done():
		}
		return err
	case !systemStopping && sh.OnStop == config.Withdraw:
		return d.Withdraw(ctx, "wgbird stopping (on_stop = withdraw)")
	}
	d.log.Info("stopping; BIRD left as it is", "system_stopping", systemStopping)
	return nil
}

// Alive reports whether every service loop has completed a pass within
// maxAge plus its own interval: the watchdog stops pinging a wedged loop.
func (d *Daemon) Alive(maxAge time.Duration) bool {
	now := time.Now()
	for _, s := range d.services {
		last := time.Unix(0, s.lastPass.Load())
		if now.Sub(last) > maxAge+s.cfg.Interval {
			return false
		}
	}
	return true
}

// Device reads the WireGuard device of the named service, bounded by the
// service's timeout: drain --wait watches its peers' counters. The probe's
// own peer is left out: it handshakes every interval and is no client.
func (d *Daemon) Device(ctx context.Context, name string) (*wgtypes.Device, error) {
	s, ok := d.byName[name]
	if !ok {
		return nil, fmt.Errorf("no service %q (configured: %v)", name, d.Services())
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	dev, err := d.deps.WireGuard.Device(ctx, s.cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("reading WireGuard device %q: %w", s.cfg.Interface, err)
	}
	if len(s.notClients) > 0 {
		clients := make([]wgtypes.Peer, 0, len(dev.Peers))
		for _, p := range dev.Peers {
			if !slices.Contains(s.notClients, p.PublicKey) {
				clients = append(clients, p)
			}
		}
		cp := *dev
		cp.Peers = clients
		dev = &cp
	}
	return dev, nil
}

// QuietPeriod returns the named service's quiet_period for drain --wait.
func (d *Daemon) QuietPeriod(name string) (time.Duration, bool) {
	s, ok := d.byName[name]
	if !ok {
		return 0, false
	}
	return s.cfg.QuietPeriod, true
}

// CheckOnce evaluates every service once and reads BIRD's protocols,
// changing nothing in BIRD: `wgbird check`. State is BIRD's own (announced
// when any controlled protocol is enabled); a BIRD error is reported in
// each status, not returned.
func (d *Daemon) CheckOnce(ctx context.Context) []api.ServiceStatus {
	protos, berr := d.protocols(ctx, time.Now())
	out := make([]api.ServiceStatus, len(d.services))
	for i, s := range d.services {
		for _, r := range s.bg {
			if r != nil {
				r.runOnce(ctx)
			}
		}
		res, _ := s.evaluate(ctx, true)
		st := api.ServiceStatus{
			Name: s.cfg.Name, Interface: s.cfg.Interface, State: health.Unknown.String(),
			Healthy: res.Healthy(), Checks: apiChecks(res.Checks), CheckedAt: time.Now(),
			Reason: res.Reason(),
		}
		if berr != nil {
			st.BIRDError = berr.Error() // it names the action itself
		} else {
			st.Protocols = apiProtocols(controlled(protos, s.cfg.Protocols))
			if announced, err := s.startState(protos); err != nil {
				st.BIRDError = err.Error()
			} else if announced {
				st.State = health.Announced.String()
			} else {
				st.State = health.Withdrawn.String()
			}
		}
		out[i] = st
	}
	return out
}
