package hook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wgbird/wgbird/internal/daemon"
	"github.com/wgbird/wgbird/internal/health"
)

// DefaultQueue is how many transitions may wait while a hook runs.
const DefaultQueue = 32

// maxOutput bounds how much of a hook's output is kept for the log.
const maxOutput = 4096

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

var _ daemon.Observer = (*Runner)(nil)

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
func (r *Runner) Evaluated(daemon.Evaluation) {}

// Transitioned queues the hook for tr, or drops it (and logs that) when
// the queue is full or the runner is closed. It never blocks.
func (r *Runner) Transitioned(service string, tr health.Transition) {
	r.Enqueue(Event{Service: service, From: tr.From, To: tr.To, Reason: tr.Reason, At: time.Now()})
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
	ctx, cancel := context.WithTimeout(r.ctx, r.opts.Timeout)
	defer cancel()
	log := r.log.With("service", e.Service, "from", e.From.String(), "to", e.To.String())

	cmd := exec.Command(r.opts.Command[0], r.opts.Command[1:]...)
	cmd.Env = append(os.Environ(), e.Env()...)
	var out limitedBuffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A grandchild holding the output pipe must not keep Wait blocked
	// after the group has been killed.
	cmd.WaitDelay = 100 * time.Millisecond

	start := time.Now()
	if err := cmd.Start(); err != nil {
		log.Error("hook failed to start", "err", err)
		return
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		why := fmt.Sprintf("killed after the %s timeout", r.opts.Timeout)
		if r.ctx.Err() != nil {
			why = "killed: wgbird is stopping"
		}
		log.Error("hook "+why, "output", out.String())
		return
	}
	took := time.Since(start).Round(time.Millisecond)
	if err != nil {
		log.Error("hook failed", "err", err, "took", took, "output", out.String())
		return
	}
	log.Info("hook ran", "took", took, "output", out.String())
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// limitedBuffer keeps the first maxOutput bytes written to it.
type limitedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := maxOutput - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.TrimSpace(l.b.String())
}
