package wireguard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// DefaultTimeout bounds a Device read whose context has no deadline.
const DefaultTimeout = time.Second

// ErrClosed is returned by Reader.Device after Close.
var ErrClosed = errors.New("wireguard reader closed")

// TimeoutError is returned by Reader.Device when the device did not answer
// in time. It unwraps to the context's error, usually
// context.DeadlineExceeded. The read itself goes on in the background until
// the device answers or its process dies, and later callers share it.
type TimeoutError struct {
	Device string
	// After is how long the caller allowed the device to answer: its
	// context's deadline measured from the start of the call.
	After time.Duration
	// Pending is how long the read the caller shared had been waiting for
	// an answer when the caller gave up: at least After when the caller
	// started the read, more when it joined one already in flight.
	Pending time.Duration
	Err     error
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("reading wireguard device %q: no answer within %s: %v", e.Device, roundHuman(e.After), e.Err)
}

func (e *TimeoutError) Unwrap() error { return e.Err }

// client is the part of *wgctrl.Client the Reader uses.
type client interface {
	Device(name string) (*wgtypes.Device, error)
	Close() error
}

var _ client = (*wgctrl.Client)(nil)

// Reader reads WireGuard devices through wgctrl with a deadline.
//
// wgctrl has no deadline of its own: against a hung wireguard-go (stopped,
// or stuck) it connects to the UAPI socket, which the kernel accepts, and
// then waits for an answer forever. Reader therefore runs each read in a
// goroutine, and it keeps at most one read per device in flight: a caller
// that finds a read of its device in flight shares that read's answer
// instead of starting another. A hung device thus holds one goroutine and
// one socket, which are released when wireguard-go resumes or dies; reads
// of other devices are not affected.
//
// Every caller leaves at its own deadline, and the device must answer
// within the caller's allowance (its deadline measured from its call)
// counted from when the shared read asked it: a read that has been in
// flight longer than that already says the device did not answer in time,
// and the caller fails at once with a *TimeoutError. So sharing a read
// never turns a device that is too slow for a caller into one that
// answered in time, and a monitoring script reading a device concurrently
// with the service loop never changes the loop's result.
//
// A Reader is safe for concurrent use. It holds one wgctrl client for its
// life: the client is safe for concurrent use (the userspace backend dials
// a fresh connection per read and keeps no state; the kernel backend's
// generic netlink connection is documented as safe for concurrent use), so
// no lock is held across a read.
type Reader struct {
	c client

	mu      sync.Mutex
	flights map[string]*flight // device name -> its read in flight
	closed  bool
}

// flight is one read of a device in progress, shared by every caller that
// asks for the device until it returns.
type flight struct {
	start time.Time
	done  chan struct{} // closed once dev and err are set
	dev   *wgtypes.Device
	err   error
}

// NewReader opens a wgctrl client. On a machine without the WireGuard
// kernel module wgctrl uses only the userspace backend, which finds
// wireguard-go devices by their UAPI sockets in /var/run/wireguard; a
// client opened before the module was loaded is opened again once a kernel
// WireGuard link it cannot read exists (see reopening).
func NewReader() (*Reader, error) {
	c, err := openWgctrl()
	if err != nil {
		return nil, fmt.Errorf("opening wgctrl client: %w", err)
	}
	return newReader(c), nil
}

func newReader(c client) *Reader {
	return &Reader{c: c, flights: make(map[string]*flight)}
}

// Device reads the device name. It returns by the context's deadline (or
// after DefaultTimeout if the context has none), or sooner when it joins a
// read in flight that has been waiting longer than that allowance, with a
// *TimeoutError. A missing device yields an error matching os.ErrNotExist;
// a wireguard-go that was killed leaves a stale socket and yields one
// matching syscall.ECONNREFUSED. The returned device may be shared with
// other callers and must not be modified.
func (r *Reader) Device(ctx context.Context, name string) (*wgtypes.Device, error) {
	start := time.Now()
	deadline, hasDeadline := ctx.Deadline()
	if !hasDeadline {
		deadline = start.Add(DefaultTimeout)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("reading wireguard device %q: %w", name, err)
	}
	allowance := deadline.Sub(start)

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, fmt.Errorf("reading wireguard device %q: %w", name, ErrClosed)
	}
	f, joined := r.flights[name]
	if !joined {
		f = &flight{start: start, done: make(chan struct{})}
		r.flights[name] = f
		go r.run(name, f)
	}
	r.mu.Unlock()

	// The device must answer within the allowance of being asked: when
	// this call asked it under a deadline of its own, that deadline is the
	// limit; otherwise a timer sets it.
	var expired <-chan time.Time
	if joined || !hasDeadline {
		wait := time.NewTimer(time.Until(f.start.Add(allowance)))
		defer wait.Stop()
		expired = wait.C
	}
	timedOut := func(err error) error {
		return &TimeoutError{Device: name, After: allowance, Pending: time.Since(f.start), Err: err}
	}
	select {
	case <-f.done:
		if f.err != nil {
			return nil, fmt.Errorf("reading wireguard device %q: %w", name, f.err)
		}
		return f.dev, nil
	case <-expired:
		return nil, timedOut(context.DeadlineExceeded)
	case <-ctx.Done():
		return nil, timedOut(ctx.Err())
	}
}

// run reads the device of f and hands the answer to everyone waiting.
func (r *Reader) run(name string, f *flight) {
	dev, err := r.c.Device(name)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.flights[name] == f {
		delete(r.flights, name)
	}
	f.dev, f.err = dev, err
	close(f.done)
}

// inFlightCount returns the number of reads still waiting for an answer.
func (r *Reader) inFlightCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.flights)
}

// Close releases the wgctrl client. Reads still in flight end when their
// devices answer or die; Device fails with ErrClosed afterwards.
func (r *Reader) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	if err := r.c.Close(); err != nil {
		return fmt.Errorf("closing wgctrl client: %w", err)
	}
	return nil
}

// roundHuman rounds a duration for people: 1.2s, 250ms, 80ms. A wait
// measured from the start of Device to the deadline is a little shorter
// than the timeout the caller set (249.6ms for 250ms); the rounding hides
// that.
func roundHuman(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= 100*time.Millisecond:
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
