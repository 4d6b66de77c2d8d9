package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/api"
	"github.com/wgbird/wgbird/internal/bird"
	"github.com/wgbird/wgbird/internal/check"
	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/health"
	"github.com/wgbird/wgbird/internal/link"
	"github.com/wgbird/wgbird/internal/tick"
	"github.com/wgbird/wgbird/internal/wireguard"
)

// UnknownProtocolError is returned when BIRD does not know a configured
// protocol: a configuration error, not a health state.
type UnknownProtocolError struct {
	Service  string
	Protocol string
}

func (e *UnknownProtocolError) Error() string {
	return fmt.Sprintf("service %q: BIRD has no protocol %q (check the protocols key and bird.conf)", e.Service, e.Protocol)
}

// ProbeError is returned by New when a service's prober cannot be
// created: a configuration error.
type ProbeError = check.ProbeError

// service is one configured service and its state. Only its own loop
// goroutine calls check; the snapshot fields are guarded by mu for readers.
type service struct {
	cfg  config.Service
	deps *Deps
	log  *slog.Logger

	machine  *health.Machine
	kick     chan struct{} // a relevant netlink event; buffered 1, coalescing
	reloaded chan struct{} // BIRD reloaded; buffered 1, coalescing
	// readProtocols returns BIRD's protocols as read at or after since,
	// and records BIRD's state.
	readProtocols func(ctx context.Context, since time.Time) ([]bird.Protocol, error)

	// The checks, in order; bg[i] runs checks[i] when it is a
	// Background check. notClients are peers the checks add themselves.
	checks     []check.Spec
	bg         []*bgRunner
	notClients []wgtypes.Key
	liveness   func(context.Context) error // nil: none

	// Loop-owned state.
	linkIndex  atomic.Int32      // last seen ifindex, to match address events
	lastPass   atomic.Int64      // UnixNano of the loop's last completed pass, for the watchdog
	birdErrs   map[string]string // current BIRD error per action, to log each once
	lastResult health.Result

	// The snapshot for Status: status without its Checks and Protocols,
	// which are kept as results and protos until a reader asks.
	mu      sync.Mutex
	status  api.ServiceStatus
	results []health.Check
	protos  []bird.Protocol
	drain   *api.Drain
}

func newService(cfg config.Service, deps *Deps, protocols func(context.Context, time.Time) ([]bird.Protocol, error)) (*service, error) {
	s := &service{
		cfg:           cfg,
		deps:          deps,
		log:           deps.Log.With("service", cfg.Name),
		machine:       health.NewMachine(health.Thresholds{Rise: cfg.Rise, Fall: cfg.Fall}),
		kick:          make(chan struct{}, 1),
		reloaded:      make(chan struct{}, 1),
		readProtocols: protocols,
	}
	set, err := check.Build(cfg, check.Deps{Links: deps.Links, WireGuard: deps.WireGuard, Exec: deps.Exec, NewProber: deps.NewProber})
	if err != nil {
		return nil, err
	}
	s.checks, s.notClients, s.liveness = set.Specs, set.NotClients, set.Liveness
	s.bg = make([]*bgRunner, len(s.checks))
	for i, sp := range s.checks {
		if sp.Policy == check.Background {
			s.bg[i] = &bgRunner{spec: sp, first: make(chan struct{})}
		}
	}
	s.status = api.ServiceStatus{Name: cfg.Name, Interface: cfg.Interface, State: health.Unknown.String(), Since: time.Now()}
	return s, nil
}

// notify asks the loop to re-evaluate at once. It never blocks: a pending
// kick already covers this one.
func (s *service) notify() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// concerns reports whether a netlink event may change this service's
// health. Address events carry only an index; while the link is unknown
// every event counts, and so does Index 0: a re-subscription that may have
// lost updates.
func (s *service) concerns(ev link.Event) bool {
	if ev.Index == 0 && ev.Name == "" {
		return true
	}
	if ev.Name != "" {
		return ev.Name == s.cfg.Interface
	}
	idx := s.linkIndex.Load()
	return idx == 0 || int(idx) == ev.Index
}

// setDrain sets or clears (nil) the drain and re-evaluates at once.
func (s *service) setDrain(d *api.Drain) {
	s.mu.Lock()
	s.drain = d
	s.status.Drain = d
	s.mu.Unlock()
	s.notify()
}

func (s *service) drained() *api.Drain {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drain
}

// Status returns a copy of the service's last known status.
func (s *service) Status() api.ServiceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.Checks = apiChecks(s.results)
	st.Protocols = apiProtocols(s.protos)
	return st
}

// apiChecks converts checks to the API's form.
func apiChecks(cs []health.Check) []api.Check {
	if len(cs) == 0 {
		return nil
	}
	out := make([]api.Check, len(cs))
	for i, c := range cs {
		out[i] = api.Check{Name: c.Name, OK: c.OK, Hard: c.Hard, Detail: c.Detail, Took: c.Took}
	}
	return out
}

// apiProtocols converts BIRD's protocols to the API's form.
func apiProtocols(ps []bird.Protocol) []api.Protocol {
	if len(ps) == 0 {
		return nil
	}
	out := make([]api.Protocol, len(ps))
	for i, p := range ps {
		out[i] = api.Protocol{Name: p.Name, Proto: p.Proto, Table: p.Table, State: p.State, Since: p.Since, Info: p.Info}
	}
	return out
}

// run is the service's loop: a check every interval (fast_interval while a
// withdrawal is pending), and at once on a relevant netlink event.
func (s *service) run(ctx context.Context, ready func()) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, r := range s.bg {
		if r != nil {
			wg.Add(1)
			go func() { defer wg.Done(); r.run(ctx) }()
		}
	}
	// Background results feed every evaluation; the first one waits for
	// them so that start-up does not withdraw for a check that has not run
	// yet.
	for _, r := range s.bg {
		if r == nil {
			continue
		}
		select {
		case <-r.first:
		case <-ctx.Done():
			return nil
		}
	}

	first := true
	s.lastPass.Store(time.Now().UnixNano())
	timer := time.NewTimer(0)
	defer timer.Stop()
	// live paces the liveness check between scheduled passes: armed while
	// the service is announced and no withdrawal is pending (then passes
	// run every fast_interval anyway). Its checks fall every
	// liveness_interval after the last scheduled pass began, and none
	// within half a liveness_interval of the next pass, which serves as
	// one: an idle service wakes interval / liveness_interval times an
	// interval, once for both (issue 14).
	live := time.NewTimer(time.Hour)
	live.Stop()
	defer live.Stop()
	var passAt, nextPass time.Time // the last scheduled pass began, the next is due
	every := s.cfg.LivenessInterval
	armLive := func() {
		if s.liveness != nil && every < s.cfg.Interval && s.machine.Started() &&
			s.machine.State() == health.Announced && !s.machine.Pending() {
			if at, ok := nextLiveness(time.Now(), passAt, nextPass, every); ok {
				live.Reset(time.Until(at))
				return
			}
		}
		live.Stop()
	}
	for {
		scheduled := false
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
			scheduled = true
		case <-live.C:
			if s.liveness(ctx) == nil {
				armLive()
				continue
			}
			// Something the checks decide may have failed: a scheduled
			// pass now, which reschedules the next.
			timer.Stop()
			scheduled = true
		case <-s.kick:
		case <-s.reloaded:
			s.reconcileNow(ctx)
			continue
		}
		if scheduled {
			passAt = time.Now()
		}
		if err := s.check(ctx, scheduled); err != nil {
			return err
		}
		s.lastPass.Store(time.Now().UnixNano())
		if first {
			first = false
			ready()
		}
		if scheduled {
			// While announced and steady, passes fall on the clock grid
			// (tick.Until: every interval, the first one after another
			// state between half and one and a half intervals on), so
			// the pass, its background checks, the BIRD watcher's read
			// and the group's datagrams share one wake-up. Rising keeps
			// exact intervals from its last pass, so rise stays rise ×
			// interval.
			wait := s.cfg.Interval
			if s.machine.Started() && s.machine.State() == health.Announced {
				if s.machine.Pending() {
					wait = s.cfg.FastInterval
				} else {
					wait = tick.Until(time.Now(), s.cfg.Interval)
				}
			}
			timer.Reset(wait)
			nextPass = time.Now().Add(wait)
		}
		armLive()
	}
}

// nextLiveness returns when the liveness check after now is due: the
// first multiple of every after passAt at least half of every from now,
// unless that is within half of every of nextPass (the pass serves as a
// check then).
func nextLiveness(now, passAt, nextPass time.Time, every time.Duration) (time.Time, bool) {
	if every <= 0 {
		return time.Time{}, false
	}
	k := now.Sub(passAt)/every + 1
	at := passAt.Add(k * every)
	if at.Sub(now) < every/2 {
		at = at.Add(every)
	}
	if nextPass.Sub(at) < every/2 {
		return time.Time{}, false
	}
	return at, true
}

// birdReloaded asks the loop to correct BIRD at once: BIRD has restarted
// or read its configuration again, which sets every protocol back to the
// configuration's state. It never blocks.
func (s *service) birdReloaded() {
	select {
	case s.reloaded <- struct{}{}:
	default:
	}
}

// reconcileNow reads BIRD's protocols and corrects them to the service's
// state, without evaluating anything.
func (s *service) reconcileNow(ctx context.Context) {
	if !s.machine.Started() {
		return
	}
	protos, err := s.readProtocols(ctx, time.Now())
	if err != nil {
		s.birdFailed(actionRead, err)
		return
	}
	s.birdOK(actionRead)
	if protos = s.reconcile(ctx, protos); protos != nil {
		s.mu.Lock()
		s.protos = controlled(protos, s.cfg.Protocols)
		s.mu.Unlock()
	}
}

// check runs one evaluation and acts on it. Scheduled checks count towards
// rise and reconcile BIRD; event-triggered ones only ever withdraw, so a
// burst of netlink events cannot announce a service before rise × interval.
func (s *service) check(ctx context.Context, scheduled bool) error {
	if !scheduled && s.machine.Started() {
		s.eventCheck(ctx)
		return nil
	}
	began := time.Now()
	res, dev := s.evaluate(ctx, scheduled)
	s.lastResult = res

	var protos []bird.Protocol
	if !s.machine.Started() || scheduled {
		var err error
		protos, err = s.readProtocols(ctx, began)
		if err != nil {
			s.birdFailed(actionRead, err)
		} else {
			s.birdOK(actionRead)
		}
		if err == nil && !s.machine.Started() {
			announced, err := s.startState(protos)
			if err != nil {
				return err
			}
			s.machine.Start(announced)
			s.log.Info("BIRD state learned", "state", s.machine.State().String(), "protocols", s.cfg.Protocols)
			s.setState(health.Transition{To: s.machine.State(), Detail: "BIRD's state at start-up"})
		}
	}
	if s.machine.Started() {
		protos = s.observe(ctx, res, protos)
	}
	s.record(res, protos, dev)
	return nil
}

// eventCheck answers a netlink event. Only the link can have changed, and
// only a withdrawal can follow, so it runs the OnEvents checks alone (no
// WireGuard read that may cost a deadline) and acts only when one of them
// failed hard (the link or a VIP is gone) or the service has been drained.
func (s *service) eventCheck(ctx context.Context) {
	p := &check.Pass{}
	var checks []health.Check
	for _, sp := range s.checks {
		if sp.Policy == check.OnEvents {
			checks = append(checks, sp.Check.Run(ctx, p))
		}
	}
	s.noteLink(p)
	res := health.Result{Checks: checks}
	if !res.Hard() {
		if s.drained() == nil {
			s.recordEvent(checks)
			return
		}
		res = s.lastResult // drained: the health is not what decides
	}
	s.record(res, s.observe(ctx, res, nil), nil)
}

// noteLink keeps the link index a pass read, to match address events.
func (s *service) noteLink(p *check.Pass) {
	if p.LinkIndex > 0 {
		s.linkIndex.Store(int32(p.LinkIndex))
	}
}

// observe feeds one result to the state machine and applies a transition
// to BIRD; without one, it reconciles BIRD against protos when they were
// read. It returns the protocols still valid for the status, or nil.
func (s *service) observe(ctx context.Context, res health.Result, protos []bird.Protocol) []bird.Protocol {
	in := health.Input{Result: res}
	if d := s.drained(); d != nil {
		in.Drained, in.DrainReason = true, d.Reason
	}
	if tr, ok := s.machine.Observe(in); ok {
		s.log.Info("transition", "from", tr.From.String(), "to", tr.To.String(), "reason", tr.Reason())
		s.setState(tr)
		if o := s.deps.Observer; o != nil {
			o.Transitioned(s.cfg.Name, tr)
		}
		return s.apply(ctx, tr.To == health.Announced)
	}
	if protos != nil {
		return s.reconcile(ctx, protos)
	}
	return nil
}

// record stores an evaluation in the status and tells the observer.
func (s *service) record(res health.Result, protos []bird.Protocol, dev *wireguard.Summary) {
	s.mu.Lock()
	s.status.Healthy = res.Healthy()
	s.results = res.Checks
	s.status.CheckedAt = time.Now()
	if protos != nil {
		s.protos = controlled(protos, s.cfg.Protocols)
	}
	s.status.BIRDError = s.birdError()
	drained := s.drain != nil
	s.mu.Unlock()
	if o := s.deps.Observer; o != nil {
		e := health.Evaluation{Service: s.cfg.Name, Result: res, State: s.machine.State(), Drained: drained, At: time.Now()}
		if dev != nil {
			e.Device = &health.DeviceStats{Peers: dev.Peers, NewestHandshake: dev.Newest, NewestClientHandshake: dev.NewestCounted, ListenPort: dev.ListenPort}
		}
		o.Evaluated(e)
	}
}

// recordEvent updates the checks an event ran in the last status, after
// an event that changed nothing else.
func (s *service) recordEvent(ran []health.Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	checks := append([]health.Check(nil), s.results...)
	for i := range checks {
		for _, c := range ran {
			if checks[i].Name == c.Name {
				checks[i] = c
			}
		}
	}
	s.results = checks
}

// evaluate runs the checks in order: inline ones now, background ones by
// their latest result. A gate's hard failure (the link or a VIP gone)
// ends the pass: the answer is known, and the WireGuard read may cost a
// whole deadline if wireguard-go hangs. It returns the device as read, or
// nil.
func (s *service) evaluate(ctx context.Context, scheduled bool) (health.Result, *wireguard.Summary) {
	p := &check.Pass{Scheduled: scheduled}
	checks := make([]health.Check, 0, len(s.checks))
	for i, sp := range s.checks {
		var c health.Check
		if r := s.bg[i]; r != nil {
			c = r.last()
		} else {
			c = sp.Check.Run(ctx, p)
			s.noteLink(p) // at once: events of a new link must match it
		}
		checks = append(checks, c)
		if sp.Gate && !c.OK && c.Hard {
			break
		}
	}
	return health.Result{Checks: checks}, p.Device
}

// startState reads whether BIRD announces the service now: any controlled
// protocol enabled counts as announcing, so a healthy start enables the
// rest instead of withdrawing all.
func (s *service) startState(protos []bird.Protocol) (bool, error) {
	byName := make(map[string]bird.Protocol, len(protos))
	for _, p := range protos {
		byName[p.Name] = p
	}
	announced := false
	for _, name := range s.cfg.Protocols {
		p, ok := byName[name]
		if !ok {
			return false, &UnknownProtocolError{Service: s.cfg.Name, Protocol: name}
		}
		announced = announced || p.Enabled()
	}
	return announced, nil
}

// apply sends enable or disable for every controlled protocol, without
// reading BIRD first: a withdrawal must not wait for a round trip. It
// returns nil protocols; the next scheduled check re-reads them.
func (s *service) apply(ctx context.Context, enable bool) []bird.Protocol {
	for _, name := range s.cfg.Protocols {
		s.set(ctx, name, enable)
	}
	return nil
}

// reconcile corrects protocols whose state differs from the wanted one:
// BIRD forgets CLI enable/disable on restart and on every configure.
func (s *service) reconcile(ctx context.Context, protos []bird.Protocol) []bird.Protocol {
	want := s.machine.State() == health.Announced
	byName := make(map[string]bird.Protocol, len(protos))
	for _, p := range protos {
		byName[p.Name] = p
	}
	corrected, missing := false, false
	for _, name := range s.cfg.Protocols {
		p, ok := byName[name]
		if !ok {
			s.birdFailed(actionReconcile, fmt.Errorf("protocol %q is no longer known to BIRD", name))
			missing = true
			continue
		}
		if p.Enabled() == want {
			continue
		}
		s.log.Warn("reconcile: BIRD differs from the wanted state, correcting",
			"protocol", name, "bird_state", p.State, "want", s.machine.State().String())
		s.set(ctx, name, want)
		corrected = true
	}
	if !missing {
		s.birdOK(actionReconcile)
	}
	if corrected {
		return nil
	}
	return protos
}

func (s *service) set(ctx context.Context, name string, enable bool) {
	var err error
	if enable {
		err = s.deps.BIRD.Enable(ctx, name)
	} else {
		err = s.deps.BIRD.Disable(ctx, name)
	}
	if err != nil {
		s.birdFailed(actionSet, err)
		return
	}
	s.birdOK(actionSet)
}

// birdFailed logs a BIRD error once per action and distinct message,
// never once per interval while nothing changes. Actions are tracked
// apart, so that a read that works does not re-arm the log of a command
// that keeps failing (a restricted socket refuses disable, not show).
func (s *service) birdFailed(action string, err error) {
	msg := err.Error()
	if s.birdErrs[action] == msg {
		return
	}
	if s.birdErrs == nil {
		s.birdErrs = map[string]string{}
	}
	s.birdErrs[action] = msg
	s.log.Error("BIRD call failed", "action", action, "err", err)
}

// birdOK records that an action worked again.
func (s *service) birdOK(action string) {
	if msg, ok := s.birdErrs[action]; ok {
		s.log.Info("BIRD answers again", "action", action, "after", msg)
		delete(s.birdErrs, action)
	}
}

// birdError is the service's current BIRD errors in one line.
func (s *service) birdError() string {
	var msgs []string
	for _, a := range []string{actionRead, actionSet, actionReconcile} {
		if m, ok := s.birdErrs[a]; ok {
			msgs = append(msgs, m)
		}
	}
	return strings.Join(msgs, "; ")
}

// Actions towards BIRD, for logging each failure once.
const (
	actionRead      = "reading protocols"
	actionSet       = "setting protocol"
	actionReconcile = "reconciling"
)

func (s *service) setState(tr health.Transition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.State = tr.To.String()
	s.status.Since = time.Now()
	s.status.Reason = tr.Reason()
}

func controlled(protos []bird.Protocol, names []string) []bird.Protocol {
	var out []bird.Protocol
	for _, n := range names {
		for _, p := range protos {
			if p.Name == n {
				out = append(out, p)
			}
		}
	}
	return out
}

// bgRunner runs one Background check every period in its own goroutine,
// so a slow check never delays the service loop; evaluations use its
// latest result.
type bgRunner struct {
	spec  check.Spec
	first chan struct{} // closed after the first result

	mu     sync.Mutex
	result health.Check
	once   sync.Once
}

func (r *bgRunner) run(ctx context.Context) {
	// On the clock grid, with the passes (tick.Until).
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.runOnce(ctx)
		t.Reset(tick.Until(time.Now(), r.spec.Period))
	}
}

// runOnce runs the check and keeps its result.
func (r *bgRunner) runOnce(ctx context.Context) {
	c := r.spec.Check.Run(ctx, &check.Pass{Scheduled: true})
	r.mu.Lock()
	r.result = c
	r.mu.Unlock()
	r.once.Do(func() { close(r.first) })
}

// last returns the latest result, Reused after the first time.
func (r *bgRunner) last() health.Check {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.result
	r.result.Reused = true
	return c
}
