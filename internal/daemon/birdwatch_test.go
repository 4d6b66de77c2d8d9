package daemon

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wgbird/wgbird/internal/bird"
	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/fakes"
)

// reloadingBIRD is a fakeBIRD that answers `show status` and can be
// reloaded as `birdc configure` does: every protocol back to the config
// file's state (disabled) and a new reconfiguration time.
type reloadingBIRD struct {
	*fakes.BIRD
	mu       sync.Mutex
	reloads  int
	enabled  chan string
	statuses int
}

var _ BIRDStatusReader = (*reloadingBIRD)(nil)

func (f *reloadingBIRD) ReadStatus(context.Context) (bird.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses++
	return bird.Status{Version: "2.0.12", LastReboot: "boot", LastReconfig: time.Unix(int64(f.reloads), 0).String()}, nil
}

func (f *reloadingBIRD) Enable(ctx context.Context, name string) error {
	err := f.BIRD.Enable(ctx, name)
	f.enabled <- name
	return err
}

func (f *reloadingBIRD) configure() {
	f.BIRD.SetState("wg_vip4", false)
	f.mu.Lock()
	f.reloads++
	f.mu.Unlock()
}

// watchRig is a rig whose BIRD answers `show status` and can be
// reloaded, with the service's interval and fast_interval.
func watchRig(t *testing.T, interval, fast time.Duration) (*rig, *reloadingBIRD) {
	t.Helper()
	r := newRig(t, map[string]bool{"wg_vip4": true}, func(s *config.Service) {
		s.Interval, s.FastInterval = interval, fast
	})
	rb := &reloadingBIRD{BIRD: r.bird, enabled: make(chan string, 100)}
	r.d.deps.BIRD = rb
	return r, rb
}

// retryEvery makes the watcher try failed signs again every d in this
// test.
func retryEvery(t *testing.T, d time.Duration) {
	old := retrySigns
	retrySigns = d
	t.Cleanup(func() { retrySigns = old })
}

// TestBIRDReloadCorrected: after a reload set wg_vip4 back to disabled,
// the service enables it again within fast_interval, though its next
// pass is an hour away, and only the reloaded generation causes it.
func TestBIRDReloadCorrected(t *testing.T) {
	r, rb := watchRig(t, time.Hour, 20*time.Millisecond)
	runRig(t, r)
	time.Sleep(100 * time.Millisecond) // several status reads, no reload
	if got := r.bird.Take(); slices.Contains(got, "enable wg_vip4") {
		t.Fatalf("BIRD commands without a reload: %v, want no enable", got)
	}

	start := time.Now()
	rb.configure()
	select {
	case name := <-rb.enabled:
		took := time.Since(start)
		t.Logf("re-enabled %s %s after the reload", name, took.Round(time.Millisecond))
		if took > 500*time.Millisecond {
			t.Errorf("re-enabled %s after the reload, want within fast_interval (20ms) and scheduling", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("not re-enabled after the reload; BIRD saw %v", r.bird.Take())
	}
	if got := r.bird.Take(); !slices.Equal(got, []string{"show protocols", "enable wg_vip4"}) {
		t.Errorf("BIRD commands since: %v, want one read and one enable", got)
	}
	rb.mu.Lock()
	n := rb.statuses
	rb.mu.Unlock()
	if n < 5 {
		t.Errorf("%d status reads, want one every fast_interval", n)
	}
}

// fakeSigns is a ReloadSigns whose signs the test sends; closing ends it.
type fakeSigns struct {
	signs  chan bird.Sign
	closed chan struct{}
	once   sync.Once
}

var _ ReloadSigns = (*fakeSigns)(nil)

func newFakeSigns() *fakeSigns {
	return &fakeSigns{signs: make(chan bird.Sign), closed: make(chan struct{})}
}

func (f *fakeSigns) Next(ctx context.Context) (bird.Sign, error) {
	select {
	case s := <-f.signs:
		return s, nil
	case <-f.closed:
		return bird.Sign{}, context.Canceled
	}
}
func (f *fakeSigns) Files() []string { return []string{"/etc/bird/bird.conf"} }
func (f *fakeSigns) Close() error    { f.once.Do(func() { close(f.closed) }); return nil }

func (f *reloadingBIRD) statusReads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.statuses
}

// waitEnabled waits for the service to enable a protocol and returns how
// long that took since start.
func waitEnabled(t *testing.T, rb *reloadingBIRD, start time.Time) time.Duration {
	t.Helper()
	select {
	case <-rb.enabled:
		return time.Since(start)
	case <-time.After(5 * time.Second):
		t.Fatalf("not re-enabled after the reload; BIRD saw %v", rb.Take())
		return 0
	}
}

// TestBIRDReloadSigns: with signs the watcher does not ask BIRD every
// fast_interval, only after a sign (then until the generation changed)
// and every interval; a sign alone, without a reload, changes nothing.
func TestBIRDReloadSigns(t *testing.T) {
	r, rb := watchRig(t, time.Hour, 10*time.Millisecond)
	signs := newFakeSigns()
	r.d.deps.BIRDReloads = func(context.Context) (ReloadSigns, error) { return signs, nil }
	runRig(t, r)
	time.Sleep(200 * time.Millisecond) // 20 fast_intervals
	if n := rb.statusReads(); n > 2 {
		t.Errorf("%d status reads in 20 fast_intervals without a sign, want the first one only", n)
	}

	// A sign without a reload (someone read the file): asked until
	// signFor has passed, nothing corrected.
	signs.signs <- bird.Sign{What: "BIRD's configuration file opened"}
	time.Sleep(50 * time.Millisecond)
	if n := rb.statusReads(); n < 4 {
		t.Errorf("%d status reads 50 ms after a sign, want one every %s", n, signEvery)
	}
	if got := rb.Take(); slices.Contains(got, "enable wg_vip4") {
		t.Fatalf("BIRD commands after a sign without a reload: %v, want no enable", got)
	}

	// A reload, its sign a little before BIRD applies it, as inotify
	// reports the open before BIRD has parsed the file.
	time.Sleep(signFor)
	start := time.Now()
	signs.signs <- bird.Sign{What: "BIRD's configuration file opened"}
	time.Sleep(15 * time.Millisecond)
	rb.configure()
	took := waitEnabled(t, rb, start)
	t.Logf("re-enabled %s after the sign", took.Round(time.Millisecond))
	if took > 500*time.Millisecond {
		t.Errorf("re-enabled %s after the sign, want within a few signEvery", took)
	}
	before := rb.statusReads()
	time.Sleep(100 * time.Millisecond)
	if n := rb.statusReads() - before; n > 1 {
		t.Errorf("%d status reads in 100 ms after the change was seen, want none: asking stops", n)
	}
}

// TestBIRDReloadWithoutSign: a reload the signs missed is seen at the
// interval's read and switches the watcher to asking every
// fast_interval; so do signs that end.
func TestBIRDReloadWithoutSign(t *testing.T) {
	for _, tc := range []string{"unsigned reload", "signs end"} {
		t.Run(tc, func(t *testing.T) {
			r, rb := watchRig(t, 300*time.Millisecond, 10*time.Millisecond)
			signs := newFakeSigns()
			r.d.deps.BIRDReloads = func(context.Context) (ReloadSigns, error) { return signs, nil }
			runRig(t, r)
			time.Sleep(400 * time.Millisecond)
			if tc == "signs end" {
				signs.Close()
			} else {
				rb.configure()
				waitEnabled(t, rb, time.Now())
			}
			time.Sleep(50 * time.Millisecond)
			before := rb.statusReads()
			time.Sleep(200 * time.Millisecond)
			if n := rb.statusReads() - before; n < 10 {
				t.Errorf("%d status reads in 200 ms after the %s, want one every fast_interval (10ms)", n, tc)
			}
		})
	}
}

// TestBIRDReloadSignsLater: signs that cannot be watched at start-up (BIRD
// not running yet) leave the watcher asking every fast_interval and
// trying again; once they can, it stops asking.
func TestBIRDReloadSignsLater(t *testing.T) {
	r, rb := watchRig(t, time.Hour, 10*time.Millisecond)
	signs := newFakeSigns()
	var mu sync.Mutex
	tries, ok := 0, false
	r.d.deps.BIRDReloads = func(context.Context) (ReloadSigns, error) {
		mu.Lock()
		defer mu.Unlock()
		tries++
		if !ok {
			return nil, errors.New("connecting to BIRD: no such file")
		}
		return signs, nil
	}
	retryEvery(t, 50*time.Millisecond)
	runRig(t, r)
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	n := tries
	ok = true
	mu.Unlock()
	if n < 2 || n > 6 {
		t.Errorf("%d tries in 200 ms, want one at start and one every 50 ms", n)
	}
	if got := rb.statusReads(); got < 10 {
		t.Errorf("%d status reads in 200 ms without signs, want one every fast_interval (10ms)", got)
	}
	time.Sleep(100 * time.Millisecond) // the next try succeeds
	before := rb.statusReads()
	time.Sleep(200 * time.Millisecond)
	if got := rb.statusReads() - before; got > 1 {
		t.Errorf("%d status reads in 200 ms with signs, want none", got)
	}
}

// TestBIRDReloadSignsBack: signs that stop (the socket's directory
// removed, say) are tried again, and the watcher stops asking every
// fast_interval once they come back.
func TestBIRDReloadSignsBack(t *testing.T) {
	r, rb := watchRig(t, time.Hour, 10*time.Millisecond)
	first, second := newFakeSigns(), newFakeSigns()
	var mu sync.Mutex
	sources := []*fakeSigns{first, second}
	r.d.deps.BIRDReloads = func(context.Context) (ReloadSigns, error) {
		mu.Lock()
		defer mu.Unlock()
		if len(sources) == 0 {
			return nil, errors.New("no more")
		}
		s := sources[0]
		sources = sources[1:]
		return s, nil
	}
	retryEvery(t, 100*time.Millisecond)
	runRig(t, r)
	time.Sleep(50 * time.Millisecond)
	first.Close() // the watch fails
	time.Sleep(60 * time.Millisecond)
	before := rb.statusReads()
	time.Sleep(30 * time.Millisecond)
	if n := rb.statusReads() - before; n < 2 {
		t.Errorf("%d status reads in 30 ms after the signs stopped, want one every fast_interval", n)
	}
	time.Sleep(150 * time.Millisecond) // retried by now
	before = rb.statusReads()
	time.Sleep(100 * time.Millisecond)
	if n := rb.statusReads() - before; n > 1 {
		t.Errorf("%d status reads in 100 ms after the signs came back, want none", n)
	}
	mu.Lock()
	left := len(sources)
	mu.Unlock()
	if left != 0 {
		t.Errorf("%d sources left, want the second taken", left)
	}
}
