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

// ErrInFlight reports that a previous read of the same device has not
// returned yet, so no new one was started. The error returned by
// Reader.Device is an *InFlightError, which matches ErrInFlight with
// errors.Is.
var ErrInFlight = errors.New("previous read still in flight")

// ErrClosed is returned by Reader.Device after Close.
var ErrClosed = errors.New("wireguard reader closed")

// InFlightError is returned by Reader.Device while an earlier read of the
// same device is still waiting for its answer.
type InFlightError struct {
	Device string
	// For is how long the earlier read has been in flight.
	For time.Duration
}

func (e *InFlightError) Error() string {
	return fmt.Sprintf("reading wireguard device %q: %v for %s", e.Device, ErrInFlight, roundHuman(e.For))
}

// Is makes errors.Is(err, ErrInFlight) true.
func (e *InFlightError) Is(target error) bool { return target == ErrInFlight }

// TimeoutError is returned by Reader.Device when the device did not answer
// before the context was done. It unwraps to the context's error, usually
// context.DeadlineExceeded. The read itself goes on in the background until
// the device answers or its process dies.
type TimeoutError struct {
	Device string
	// After is how long Device waited: the context's deadline measured from
	// the start of the call.
	After time.Duration
	Err   error
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
// goroutine and gives up at the context's deadline, and it allows at most
// one read per device in flight: while a read of a device has not returned,
// further reads of that device fail at once with an *InFlightError. A hung
// device thus holds one goroutine and one socket, which are released when
// wireguard-go resumes or dies; reads of other devices are not affected.
//
// A Reader is safe for concurrent use. It holds one wgctrl client for its
// life: the client is safe for concurrent use (the userspace backend dials
// a fresh connection per read and keeps no state; the kernel backend's
// generic netlink connection is documented as safe for concurrent use), so
// no lock is held across a read.
type Reader struct {
	c client

	mu       sync.Mutex
	inFlight map[string]time.Time // device name -> start of its pending read
	closed   bool
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
	return &Reader{c: c, inFlight: make(map[string]time.Time)}
}

// Device reads the device name. It returns by the context's deadline (or
// after DefaultTimeout if the context has none) with a *TimeoutError, and at
// once with an *InFlightError while a previous read of name is pending. A
// missing device yields an error matching os.ErrNotExist; a wireguard-go
// that was killed leaves a stale socket and yields one matching
// syscall.ECONNREFUSED.
func (r *Reader) Device(ctx context.Context, name string) (*wgtypes.Device, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	start := time.Now()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("reading wireguard device %q: %w", name, err)
	}

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, fmt.Errorf("reading wireguard device %q: %w", name, ErrClosed)
	}
	if since, ok := r.inFlight[name]; ok {
		r.mu.Unlock()
		return nil, &InFlightError{Device: name, For: start.Sub(since)}
	}
	r.inFlight[name] = start
	r.mu.Unlock()

	type result struct {
		dev *wgtypes.Device
		err error
	}
	done := make(chan result, 1) // buffered: the reader never waits for us
	go func() {
		dev, err := r.c.Device(name)
		r.mu.Lock()
		delete(r.inFlight, name)
		r.mu.Unlock()
		done <- result{dev, err}
	}()

	select {
	case res := <-done:
		if res.err != nil {
			return nil, fmt.Errorf("reading wireguard device %q: %w", name, res.err)
		}
		return res.dev, nil
	case <-ctx.Done():
		after := time.Since(start)
		if deadline, ok := ctx.Deadline(); ok {
			after = deadline.Sub(start)
		}
		return nil, &TimeoutError{Device: name, After: after, Err: ctx.Err()}
	}
}

// inFlightCount returns the number of reads still waiting for an answer.
func (r *Reader) inFlightCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.inFlight)
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
