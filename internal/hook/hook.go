package hook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wgbird/wgbird/internal/execcheck"
	"github.com/wgbird/wgbird/internal/health"
)

// DefaultQueue is how many transitions may wait while a hook runs.
const DefaultQueue = 32

// Options configure a Runner.
type Options struct {
	// Command is the program and its arguments, not run through a shell.
	Command []string
	// Timeout kills the hook's process group when it runs longer.
	Timeout time.Duration
	// Queue bounds the transitions waiting for the hook; DefaultQueue if 0.
	// When it is full, new transitions are dropped and logged.
	Queue int
	Log   *slog.Logger
}

// Event is one transition, as the hook sees it in its environment.
type Event struct {
	Service  string
	From, To health.State
	Reason   string
	At       time.Time
}

// Env returns the event as environment variables: WGBIRD_SERVICE,
// WGBIRD_FROM, WGBIRD_TO ("announced", "withdrawn", "unknown"),
// WGBIRD_REASON and WGBIRD_TIME (RFC 3339).
func (e Event) Env() []string {
	return []string{
		"WGBIRD_SERVICE=" + e.Service,
		"WGBIRD_FROM=" + e.From.String(),
		"WGBIRD_TO=" + e.To.String(),
		"WGBIRD_REASON=" + oneLine(e.Reason),
		"WGBIRD_TIME=" + e.At.Format(time.RFC3339Nano),
	}
}

// Runner runs the hook for each transition, one at a time and in order,
// in its own goroutine: Transitioned never blocks the service loop.
type Runner struct {
	opts    Options
	log     *slog.Logger
	queue   chan Event
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	dropped atomic.Uint64

	closeOnce sync.Once
	mu        sync.Mutex // guards closed against a send on a closed queue
	closed    bool
}

// Start returns a running Runner. Close it to stop.
func Start(opts Options) (*Runner, error) {
	if len(opts.Command) == 0 || opts.Command[0] == "" {
		return nil, errors.New("hook: no command")
	}
	if opts.Timeout <= 0 {
		return nil, fmt.Errorf("hook: timeout %s is not positive", opts.Timeout)
	}
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{
		opts:   opts,
		log:    opts.Log.With("hook", opts.Command[0]),
		queue:  make(chan Event, opts.Queue),
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go r.loop()
	return r, nil
}

// Evaluated implements daemon.Observer; hooks run on transitions only.
func (r *Runner) Evaluated(health.Evaluation) {}

// Transitioned queues the hook for tr, or drops it (and logs that) when
// the queue is full or the runner is closed. It never blocks.
func (r *Runner) Transitioned(service string, tr health.Transition) {
	r.Enqueue(Event{Service: service, From: tr.From, To: tr.To, Reason: tr.Reason(), At: time.Now()})
}

// Enqueue queues e without blocking; it reports whether e was queued.
func (r *Runner) Enqueue(e Event) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		r.drop(e, "wgbird is stopping")
		return false
	}
	select {
	case r.queue <- e:
		return true
	default:
		r.drop(e, fmt.Sprintf("%d transitions already waiting for the hook", cap(r.queue)))
		return false
	}
}

func (r *Runner) drop(e Event, why string) {
	r.dropped.Add(1)
	r.log.Warn("hook not run for a transition", "service", e.Service, "from", e.From.String(), "to", e.To.String(), "why", why)
}

// Dropped returns how many transitions were not given to the hook.
func (r *Runner) Dropped() uint64 { return r.dropped.Load() }

// Close stops taking transitions and runs those queued until ctx ends; then
// the running hook is killed and the rest are dropped. It returns when
// the runner's goroutine has ended.
func (r *Runner) Close(ctx context.Context) {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		close(r.queue)
		r.mu.Unlock()
	})
	select {
	case <-r.done:
	case <-ctx.Done():
		r.cancel()
		<-r.done
	}
}

func (r *Runner) loop() {
	defer close(r.done)
	defer r.cancel()
	for e := range r.queue {
		if r.ctx.Err() != nil {
			r.drop(e, "wgbird is stopping")
			continue
		}
		r.run(e)
	}
}

// run runs the hook once for e, in its own process group, killing the
// whole group on timeout so that nothing it started outlives it.
func (r *Runner) run(e Event) {
	log := r.log.With("service", e.Service, "from", e.From.String(), "to", e.To.String())
	o := execcheck.Exec(r.ctx, r.opts.Command, e.Env(), r.opts.Timeout)
	o.Output = strings.TrimSpace(o.Output)
	took := o.Took.Round(time.Millisecond)
	switch {
	case !o.Started:
		log.Error("hook failed to start", "err", o.Err)
	case o.TimedOut:
		why := fmt.Sprintf("killed after the %s timeout", r.opts.Timeout)
		if r.ctx.Err() != nil {
			why = "killed: wgbird is stopping"
		}
		log.Error("hook "+why, "output", o.Output)
	case o.Err != nil:
		log.Error("hook failed", "err", o.Err, "took", took, "output", o.Output)
	default:
		log.Info("hook ran", "took", took, "output", o.Output)
	}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
