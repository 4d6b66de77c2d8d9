package wireguard

import (
	"context"
	"errors"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// fakeClient answers reads of the devices in devs; a read of a device in
// hung blocks until release(name) is called.
type fakeClient struct {
	mu    sync.Mutex
	devs  map[string]*wgtypes.Device
	hung  map[string]chan struct{}
	calls map[string]int
	delay time.Duration // every read takes this long
}

var _ client = (*fakeClient)(nil)

func newFakeClient(devs ...*wgtypes.Device) *fakeClient {
	f := &fakeClient{devs: map[string]*wgtypes.Device{}, hung: map[string]chan struct{}{}, calls: map[string]int{}}
	for _, d := range devs {
		f.devs[d.Name] = d
	}
	return f
}

func (f *fakeClient) hang(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hung[name] = make(chan struct{})
}

func (f *fakeClient) release(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.hung[name])
	delete(f.hung, name)
}

func (f *fakeClient) Device(name string) (*wgtypes.Device, error) {
	f.mu.Lock()
	f.calls[name]++
	wait := f.hung[name]
	delay := f.delay
	f.mu.Unlock()
	if wait != nil {
		<-wait
	}
	time.Sleep(delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	if d, ok := f.devs[name]; ok {
		return d, nil
	}
	return nil, os.ErrNotExist
}

func (f *fakeClient) Close() error { return nil }

func (f *fakeClient) callCount(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[name]
}

func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReaderHungDevice(t *testing.T) {
	wg0 := &wgtypes.Device{Name: "wg0", ListenPort: 51820}
	wg1 := &wgtypes.Device{Name: "wg1", ListenPort: 51821}
	f := newFakeClient(wg0, wg1)
	r := newReader(f, t.TempDir())
	defer r.Close()

	got, err := r.Device(withTimeout(t, time.Second), "wg0")
	if err != nil {
		t.Fatalf("Device(wg0): %v", err)
	}
	if diff := cmp.Diff(wg0, got); diff != "" {
		t.Errorf("Device(wg0) (-want +got):\n%s", diff)
	}

	baseline := runtime.NumGoroutine()
	f.hang("wg0")

	start := time.Now()
	_, err = r.Device(withTimeout(t, 50*time.Millisecond), "wg0")
	var te *TimeoutError
	if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Device(hung wg0) error = %v, want a *TimeoutError wrapping context.DeadlineExceeded", err)
	}
	// After is measured from the start of Device to the deadline, so it
	// is a little under the 50ms the context was created with.
	if te.After <= 0 || te.After > 50*time.Millisecond {
		t.Errorf("TimeoutError.After = %v, want up to 50ms (start of Device to the deadline)", te.After)
	}
	t.Logf("hung read returned after %v", time.Since(start))

	// Further reads of wg0 share the hung read: they start no other one,
	// and as it has been waiting longer than they allow, they fail at once
	// rather than after their own allowance (the margins leave room for a
	// loaded machine).
	time.Sleep(300 * time.Millisecond)
	for range 5 {
		start := time.Now()
		_, err := r.Device(withTimeout(t, 250*time.Millisecond), "wg0")
		var te *TimeoutError
		if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Device(wg0) while in flight: error = %v, want a *TimeoutError", err)
		}
		if te.Device != "wg0" || te.Pending < te.After || te.After > 250*time.Millisecond {
			t.Errorf("TimeoutError = %+v, want device wg0, After up to 250ms and Pending at least After", te)
		}
		if el := time.Since(start); el > 150*time.Millisecond {
			t.Errorf("Device(wg0) joining a read older than its allowance took %v, want it to return at once", el)
		}
	}
	// A caller allowing more than the read has been pending waits for the
	// rest of its allowance, counted from when the read asked the device.
	pending := time.Since(start)
	allow := pending + 100*time.Millisecond
	joined := time.Now()
	_, err = r.Device(withTimeout(t, allow), "wg0")
	if !errors.As(err, &te) {
		t.Fatalf("Device(wg0) with a longer allowance: error = %v, want a *TimeoutError", err)
	}
	if el := time.Since(joined); el < 50*time.Millisecond || el > allow {
		t.Errorf("Device(wg0) with allowance %v joining a read pending for %v returned after %v, want about 100ms", allow, pending, el)
	}
	if n := f.callCount("wg0"); n != 2 {
		t.Errorf("wgctrl reads of wg0 = %d, want 2 (one good, one hung)", n)
	}
	if n := r.inFlightCount(); n != 1 {
		t.Errorf("reads in flight = %d, want 1", n)
	}
	// Goroutines of the calls that just returned may take a moment to
	// exit; what must hold is that they settle at one hung read.
	waitFor(t, "goroutines to settle at baseline + one hung read", func() bool { return runtime.NumGoroutine() <= baseline+1 })

	// A hung wg0 does not block wg1.
	got, err = r.Device(withTimeout(t, time.Second), "wg1")
	if err != nil {
		t.Fatalf("Device(wg1) while wg0 hangs: %v", err)
	}
	if diff := cmp.Diff(wg1, got); diff != "" {
		t.Errorf("Device(wg1) (-want +got):\n%s", diff)
	}

	f.release("wg0")
	waitFor(t, "the hung read to return", func() bool { return r.inFlightCount() == 0 })
	waitFor(t, "goroutines back to baseline", func() bool { return runtime.NumGoroutine() <= baseline })
	if _, err := r.Device(withTimeout(t, time.Second), "wg0"); err != nil {
		t.Fatalf("Device(wg0) after release: %v", err)
	}
}

// TestReaderShares reads a slow device from many goroutines at once: one
// wgctrl read serves them all, and each gets its answer.
func TestReaderShares(t *testing.T) {
	wg0 := &wgtypes.Device{Name: "wg0", ListenPort: 51820}
	f := newFakeClient(wg0)
	f.delay = 50 * time.Millisecond
	r := newReader(f, t.TempDir())
	defer r.Close()

	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dev, err := r.Device(withTimeout(t, time.Second), "wg0")
			if err == nil && dev != wg0 {
				err = errors.New("got another device")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Device(wg0) while shared: %v", err)
		}
	}
	if n := f.callCount("wg0"); n < 1 || n > 2 {
		t.Errorf("wgctrl reads of wg0 for 10 concurrent callers = %d, want 1 (2 if the scheduler split them)", n)
	}
}

// TestConcurrentReadsKeepResult is the bug of issue 12: a monitoring
// script reading a device (the control socket's status and peer listing)
// while the service loop reads it must never change the loop's check.
// A device that answers in 10 ms passes every evaluation allowing 150 ms
// however busy the readers are; one that answers in 200 ms fails every
// one, as it does alone: sharing a read never makes a slow device look
// fast, even when the evaluating goroutine runs late and finds the
// answer and its deadline both there (CI's failure of 2026-12-01).
func TestConcurrentReadsKeepResult(t *testing.T) {
	for _, tt := range []struct {
		name  string
		delay time.Duration
		ok    bool
	}{
		{"fast device stays healthy", 10 * time.Millisecond, true},
		{"slow device stays failing", 200 * time.Millisecond, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var priv wgtypes.Key
			priv[0] = 1
			dev := &wgtypes.Device{Name: "wg0", ListenPort: 51820, PrivateKey: priv, Peers: []wgtypes.Peer{{PublicKey: wgtypes.Key{2}}}}
			f := newFakeClient(dev)
			f.delay = tt.delay
			r := newReader(f, t.TempDir())
			defer r.Close()
			spec := Spec{Interface: "wg0", MinPeers: 1}

			ctx, stop := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for i := range 4 { // status and peer readers, polling without pause
				wg.Add(1)
				go func() {
					defer wg.Done()
					for ctx.Err() == nil {
						rctx, cancel := context.WithTimeout(ctx, time.Duration(5+i*60)*time.Millisecond)
						if i%2 == 0 {
							r.Device(rctx, "wg0") // the peer listing
						} else {
							r.Summary(rctx, "wg0") // wgbird check
						}
						cancel()
					}
				}()
			}
			for i := range 15 {
				ectx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
				d, err := r.Summary(ectx, "wg0")
				cancel()
				var sum *Summary
				if err == nil {
					sum = &d
				}
				c := Evaluate(spec, sum, err, time.Now())
				if c.OK != tt.ok {
					t.Errorf("evaluation %d with concurrent readers: %+v, want OK %v", i, c, tt.ok)
				}
				time.Sleep(time.Duration(i%4) * 7 * time.Millisecond)
			}
			stop()
			wg.Wait()
		})
	}
}

func TestReaderErrors(t *testing.T) {
	r := newReader(newFakeClient(), t.TempDir())

	_, err := r.Device(withTimeout(t, time.Second), "wg9")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Device(missing) error = %v, want os.ErrNotExist", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Device(ctx, "wg9"); !errors.Is(err, context.Canceled) {
		t.Errorf("Device(canceled ctx) error = %v, want context.Canceled", err)
	}

	// No deadline: DefaultTimeout applies; the fake answers at once.
	if _, err := r.Device(context.Background(), "wg9"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Device(no deadline) error = %v, want os.ErrNotExist", err)
	}

	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := r.Device(withTimeout(t, time.Second), "wg9"); !errors.Is(err, ErrClosed) {
		t.Errorf("Device after Close error = %v, want ErrClosed", err)
	}
}

func TestNewReader(t *testing.T) {
	// wgctrl.New must work without the WireGuard kernel module (it falls
	// back to the userspace backend) and without root.
	r, err := NewReader()
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	defer r.Close()
	_, err = r.Device(withTimeout(t, time.Second), "wgtBnothere")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Device(wgtBnothere) error = %v, want os.ErrNotExist", err)
	}
}
