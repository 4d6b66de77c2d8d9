package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/api"
	"github.com/wgbird/wgbird/internal/bird"
	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/execcheck"
	"github.com/wgbird/wgbird/internal/fakes"
	"github.com/wgbird/wgbird/internal/health"
	"github.com/wgbird/wgbird/internal/link"
)

var (
	_ BIRD      = (*fakes.BIRD)(nil)
	_ WireGuard = (*fakes.WireGuard)(nil)
	_ Links     = (*fakes.Links)(nil)
	_ Prober    = (*fakes.Prober)(nil)
)

var vip = netip.MustParsePrefix("192.168.20.1/24")

// newBIRD returns a fake BIRD knowing the protocols of enabled, up or
// down.
func newBIRD(enabled map[string]bool) *fakes.BIRD {
	var ps []bird.Protocol
	for _, n := range []string{"device1", "wg_vip4", "wg_vip6", "bgp_router"} {
		if en, ok := enabled[n]; ok {
			ps = append(ps, fakes.Static(n, en))
		}
	}
	return fakes.NewBIRD(ps...)
}

func healthyLink() link.State {
	return link.State{Exists: true, Index: 7, Up: true, Running: true, OperState: "unknown", Addrs: []netip.Prefix{vip}}
}

func healthyDevice() *wgtypes.Device { return fakes.Device(51820, 2, time.Time{}) }

type rig struct {
	bird  *fakes.BIRD
	wg    *fakes.WireGuard
	links *fakes.Links
	d     *Daemon
	svc   *service
}

func testService(mod func(*config.Service)) config.Service {
	s := config.Service{
		Name: "wg0", Interface: "wg0", VIPs: []netip.Prefix{vip}, Protocols: []string{"wg_vip4"},
		Interval: time.Hour, FastInterval: time.Hour, LivenessInterval: time.Hour, Timeout: 100 * time.Millisecond,
		Rise: 3, Fall: 2, MinPeers: 1,
	}
	if mod != nil {
		mod(&s)
	}
	return s
}

func newRig(t *testing.T, enabled map[string]bool, mod func(*config.Service)) *rig {
	t.Helper()
	r := &rig{
		bird:  newBIRD(enabled),
		wg:    fakes.NewWireGuard(healthyDevice()),
		links: fakes.NewLinks(healthyLink()),
	}
	cfg := &config.Config{Services: []config.Service{testService(mod)}}
	cfg.Shutdown.Delay = 10 * time.Millisecond
	cfg.Shutdown.OnSystemShutdown = config.Withdraw
	cfg.Shutdown.OnStop = config.Keep
	r.d = mustNew(t, cfg, Deps{
		BIRD: r.bird, WireGuard: r.wg, Links: r.links,
		Exec: execcheck.Run,
		Log:  slog.New(slog.NewTextHandler(testWriter(t), nil)),
	})
	r.svc = r.d.services[0]
	return r
}

// take returns and forgets the commands BIRD received, without the
// version queries (counted apart: they change nothing).
func (r *rig) take() []string {
	var out []string
	for _, c := range r.bird.Take() {
		if c != "show status" {
			out = append(out, c)
		}
	}
	return out
}

// mustNew is New for a config that must work.
func mustNew(t testing.TB, cfg *config.Config, deps Deps) *Daemon {
	t.Helper()
	d, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func testWriter(t *testing.T) io.Writer {
	if testing.Verbose() {
		return os.Stderr
	}
	return io.Discard
}

// steps runs scheduled (true) or event-triggered (false) checks.
func (r *rig) steps(t *testing.T, scheduled ...bool) {
	t.Helper()
	for _, s := range scheduled {
		if err := r.svc.check(context.Background(), s); err != nil {
			t.Fatalf("check: %v", err)
		}
	}
}

const (
	sched = true
	event = false
)

func TestStartup(t *testing.T) {
	tests := []struct {
		name    string
		enabled bool // BIRD's state at start
		break_  func(r *rig)
		steps   []bool
		want    []string
	}{
		{
			name: "announced and healthy: keep announcing, nothing sent", enabled: true,
			steps: []bool{sched, sched},
			want:  []string{"show protocols", "show protocols"},
		},
		{
			name: "announced and unhealthy: withdraw at once", enabled: true,
			break_: func(r *rig) { r.wg.SetPeers(0) },
			steps:  []bool{sched},
			want:   []string{"show protocols", "disable wg_vip4"},
		},
		{
			name: "withdrawn and healthy: announce after rise", enabled: false,
			steps: []bool{sched, sched, sched, sched},
			want:  []string{"show protocols", "show protocols", "show protocols", "enable wg_vip4", "show protocols"},
		},
		{
			name: "withdrawn and unhealthy: stay withdrawn", enabled: false,
			break_: func(r *rig) { r.links.Set(link.State{}) },
			steps:  []bool{sched, sched, sched, sched},
			want:   []string{"show protocols", "show protocols", "show protocols", "show protocols"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, map[string]bool{"wg_vip4": tt.enabled, "bgp_router": true}, nil)
			if tt.break_ != nil {
				tt.break_(r)
			}
			r.steps(t, tt.steps...)
			if diff := cmp.Diff(tt.want, r.take()); diff != "" {
				t.Errorf("BIRD commands (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWithdrawAndReturn(t *testing.T) {
	tests := []struct {
		name  string
		fault func(r *rig)
		steps []bool
		want  []string
	}{
		{
			name:  "link deleted: an event withdraws at once, without reading BIRD first",
			fault: func(r *rig) { r.links.Set(link.State{}) },
			steps: []bool{event},
			want:  []string{"disable wg_vip4"},
		},
		{
			name: "VIP removed: an event withdraws at once",
			fault: func(r *rig) {
				st := healthyLink()
				st.Addrs = nil
				r.links.Set(st)
			},
			steps: []bool{event},
			want:  []string{"disable wg_vip4"},
		},
		{
			name:  "wireguard-go hung: withdrawn after fall",
			fault: func(r *rig) { r.wg.Set(nil, context.DeadlineExceeded) },
			steps: []bool{sched, sched},
			want:  []string{"show protocols", "show protocols", "disable wg_vip4"},
		},
		{
			name:  "device gone: hard, withdrawn at the first check",
			fault: func(r *rig) { r.wg.Set(nil, os.ErrNotExist) },
			steps: []bool{sched},
			want:  []string{"show protocols", "disable wg_vip4"},
		},
		{
			name:  "peers removed: withdrawn after fall",
			fault: func(r *rig) { r.wg.SetPeers(0) },
			steps: []bool{sched, sched},
			want:  []string{"show protocols", "show protocols", "disable wg_vip4"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, map[string]bool{"wg_vip4": true}, nil)
			r.steps(t, sched)
			r.take()
			tt.fault(r)
			r.steps(t, tt.steps...)
			if diff := cmp.Diff(tt.want, r.take()); diff != "" {
				t.Errorf("BIRD commands after the fault (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEventsNeverAnnounce: healthy results from netlink events do not count
// towards rise, so a burst of events cannot announce early.
func TestEventsNeverAnnounce(t *testing.T) {
	r := newRig(t, map[string]bool{"wg_vip4": false}, nil)
	r.steps(t, sched)
	r.steps(t, event, event, event, event, event)
	r.steps(t, sched)
	if diff := cmp.Diff([]string{"show protocols", "show protocols"}, r.take()); diff != "" {
		t.Errorf("BIRD commands (-want +got):\n%s", diff)
	}
	r.steps(t, sched)
	if diff := cmp.Diff([]string{"show protocols", "enable wg_vip4"}, r.take()); diff != "" {
		t.Errorf("BIRD commands at rise (-want +got):\n%s", diff)
	}
}

// TestReconcile: BIRD forgets CLI disable on configure and restart; the
// next scheduled check puts it back.
func TestReconcile(t *testing.T) {
	r := newRig(t, map[string]bool{"wg_vip4": true, "wg_vip6": true}, func(s *config.Service) {
		s.Protocols = []string{"wg_vip4", "wg_vip6"}
	})
	r.wg.SetPeers(0)
	r.steps(t, sched)
	want := []string{"show protocols", "disable wg_vip4", "disable wg_vip6"}
	if diff := cmp.Diff(want, r.take()); diff != "" {
		t.Fatalf("withdrawal (-want +got):\n%s", diff)
	}
	// birdc configure: BIRD enables wg_vip6 again.
	r.bird.SetState("wg_vip6", true)
	r.steps(t, sched, sched)
	want = []string{"show protocols", "disable wg_vip6", "show protocols"}
	if diff := cmp.Diff(want, r.take()); diff != "" {
		t.Errorf("reconcile (-want +got):\n%s", diff)
	}
}

func TestUnknownProtocol(t *testing.T) {
	r := newRig(t, map[string]bool{"wg_vip4": true}, func(s *config.Service) { s.Protocols = []string{"wg_vip4", "wg_vip6"} })
	err := r.svc.check(context.Background(), sched)
	var upe *UnknownProtocolError
	if !errors.As(err, &upe) || upe.Protocol != "wg_vip6" {
		t.Fatalf("check = %v, want UnknownProtocolError for wg_vip6", err)
	}
	if got, want := err.Error(), `service "wg0": BIRD has no protocol "wg_vip6" (check the protocols key and bird.conf)`; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}

// TestBIRDUnreachable: a missing BIRD socket is a state, not a crash; once
// BIRD answers, the start-up rules apply.
func TestBIRDUnreachable(t *testing.T) {
	r := newRig(t, map[string]bool{"wg_vip4": true}, nil)
	r.bird.SetError(fmt.Errorf("dial unix /run/bird/bird.ctl: connect: no such file or directory"))
	r.wg.SetPeers(0)
	r.steps(t, sched, event, sched)
	if r.svc.machine.Started() {
		t.Fatal("machine started without BIRD")
	}
	if got := r.svc.Status().BIRDError; got == "" {
		t.Error("status shows no BIRD error")
	}
	r.take()
	r.bird.SetError(nil)
	r.steps(t, sched)
	if diff := cmp.Diff([]string{"show protocols", "disable wg_vip4"}, r.take()); diff != "" {
		t.Errorf("BIRD commands once BIRD answers (-want +got):\n%s", diff)
	}
	if got := r.svc.Status().BIRDError; got != "" {
		t.Errorf("status still shows BIRD error %q", got)
	}
}

// TestBIRDStatus: the socket's state follows BIRD's answers, and the version
// is read once when BIRD answers and again after a recovery.
func TestBIRDStatus(t *testing.T) {
	r := newRig(t, map[string]bool{"wg_vip4": true}, nil)
	r.d.cfg.BIRD.Socket = "/run/bird/bird.ctl"
	r.steps(t, sched, sched)
	got := r.d.BIRDStatus()
	if !got.Reachable || got.Version != "2.0.12" || got.Error != "" || got.CheckedAt.IsZero() {
		t.Errorf("BIRDStatus = %+v, want reachable 2.0.12", got)
	}
	if r.bird.Count("show status") != 1 {
		t.Errorf("show status sent %d times, want once", r.bird.Count("show status"))
	}
	r.bird.SetError(errors.New("connect: connection refused"))
	r.steps(t, sched)
	if got := r.d.BIRDStatus(); got.Reachable || got.Error != "connect: connection refused" || got.Version != "" {
		t.Errorf("BIRDStatus while down = %+v", got)
	}
	r.bird.SetError(nil)
	r.steps(t, sched)
	if got := r.d.BIRDStatus(); !got.Reachable || got.Version != "2.0.12" || r.bird.Count("show status") != 2 {
		t.Errorf("BIRDStatus after recovery = %+v, show status sent %d times; want reachable, version re-read", got, r.bird.Count("show status"))
	}
}

func TestDrain(t *testing.T) {
	r := newRig(t, map[string]bool{"wg_vip4": true}, func(s *config.Service) { s.Rise = 2 })
	r.steps(t, sched)
	r.take()
	if err := r.d.SetDrain(nil, &api.Drain{Reason: "kernel upgrade", Since: time.Now()}); err != nil {
		t.Fatal(err)
	}
	r.steps(t, event, sched)
	if diff := cmp.Diff([]string{"disable wg_vip4", "show protocols"}, r.take()); diff != "" {
		t.Errorf("drain (-want +got):\n%s", diff)
	}
	st := r.svc.Status()
	if st.State != "withdrawn" || st.Reason != "drained: kernel upgrade" || st.Drain == nil {
		t.Errorf("status after drain = %+v", st)
	}
	if err := r.d.SetDrain([]string{"wg0"}, nil); err != nil {
		t.Fatal(err)
	}
	r.steps(t, event, sched, sched)
	if diff := cmp.Diff([]string{"show protocols", "show protocols", "enable wg_vip4"}, r.take()); diff != "" {
		t.Errorf("undrain (-want +got):\n%s", diff)
	}
	if err := r.d.SetDrain([]string{"nosuch"}, nil); err == nil {
		t.Error("SetDrain of an unknown service succeeded")
	}
}

func TestStop(t *testing.T) {
	tests := []struct {
		name     string
		stopping bool
		onStop   string
		want     []string
	}{
		{"plain restart leaves BIRD as it is", false, config.Keep, nil},
		{"system shutdown withdraws", true, config.Keep, []string{"disable wg_vip4"}},
		{"on_stop withdraw", false, config.Withdraw, []string{"disable wg_vip4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, map[string]bool{"wg_vip4": true}, nil)
			r.d.cfg.Shutdown.OnStop = tt.onStop
			if err := r.d.Stop(context.Background(), tt.stopping); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, r.take()); diff != "" {
				t.Errorf("BIRD commands (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRunEvents runs the real loop with polling effectively off: only the
// netlink event can cause the withdrawal.
func TestRunEvents(t *testing.T) {
	r := newRig(t, map[string]bool{"wg_vip4": true}, nil)
	events := make(chan chan<- link.Event, 1)
	r.d.deps.Subscribe = func(ctx context.Context, _ *slog.Logger, ch chan<- link.Event) {
		events <- ch
		<-ctx.Done()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- r.d.Run(ctx, func() { close(ready) }) }()
	<-ready
	ch := <-events

	r.links.Set(link.State{})
	ch <- link.Event{Name: "other0"} // not ours: no effect
	ch <- link.Event{Name: "wg0"}
	select {
	case name := <-r.bird.Disabled():
		if name != "wg_vip4" {
			t.Fatalf("disabled %q", name)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no withdrawal after the link event")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := r.svc.Status(); got.State != health.Withdrawn.String() || got.Reason != "link: link wg0 not found" {
		t.Errorf("status = %q %q", got.State, got.Reason)
	}
}

func TestRunUnknownProtocolStops(t *testing.T) {
	r := newRig(t, map[string]bool{"bgp_router": true}, nil)
	err := r.d.Run(context.Background(), nil)
	var upe *UnknownProtocolError
	if !errors.As(err, &upe) {
		t.Fatalf("Run = %v, want UnknownProtocolError", err)
	}
}

func TestConcerns(t *testing.T) {
	r := newRig(t, map[string]bool{"wg_vip4": true}, nil)
	s := r.svc
	tests := []struct {
		ev   link.Event
		want bool
	}{
		{link.Event{Index: 3}, true}, // link not seen yet: every event counts
		{link.Event{Index: 0}, true}, // re-subscribed: updates may be lost
	}
	for _, tt := range tests {
		if got := s.concerns(tt.ev); got != tt.want {
			t.Errorf("before the first read: concerns(%+v) = %v, want %v", tt.ev, got, tt.want)
		}
	}
	r.steps(t, sched) // learns index 7
	tests = []struct {
		ev   link.Event
		want bool
	}{
		{link.Event{Index: 7, Name: "wg0"}, true},
		{link.Event{Index: 9, Name: "wg0"}, true}, // re-created with a new index
		{link.Event{Index: 8, Name: "eth0"}, false},
		{link.Event{Index: 7}, true}, // address event on wg0
		{link.Event{Index: 8}, false},
		{link.Event{Index: 0}, true},
	}
	for _, tt := range tests {
		if got := s.concerns(tt.ev); got != tt.want {
			t.Errorf("concerns(%+v) = %v, want %v", tt.ev, got, tt.want)
		}
	}
}

// TestEventReadsLinkOnly: a netlink event can only change the link, so it
// must not wait for a WireGuard read (a hung wireguard-go costs a whole
// deadline) nor count a soft failure towards fall.
func TestEventReadsLinkOnly(t *testing.T) {
	r := newRig(t, map[string]bool{"wg_vip4": true}, nil)
	r.steps(t, sched)
	r.take()
	r.wg.Set(nil, context.DeadlineExceeded) // hung: soft
	before := r.wg.Reads()
	r.steps(t, event, event, event)
	if n := r.wg.Reads() - before; n != 0 {
		t.Errorf("%d WireGuard reads for 3 events, want 0", n)
	}
	if got := r.take(); len(got) != 0 {
		t.Errorf("BIRD commands after events with a healthy link: %q", got)
	}
	// One scheduled failure is not yet fall (2): events did not count.
	r.steps(t, sched)
	if diff := cmp.Diff([]string{"show protocols"}, r.take()); diff != "" {
		t.Errorf("BIRD commands (-want +got):\n%s", diff)
	}
	if got := r.svc.Status().Checks; len(got) != 2 || got[1].OK {
		t.Errorf("status checks = %+v, want link and a failed wireguard", got)
	}
}

// TestBackgroundResultReused: an exec check's result is fresh in the
// first evaluation after its run and marked Reused after that, so metrics
// time each run once.
func TestBackgroundResultReused(t *testing.T) {
	r := newRig(t, map[string]bool{"wg_vip4": true}, func(s *config.Service) {
		s.Exec = []config.Exec{{Name: "true", Command: []string{"true"}, Timeout: time.Second}}
	})
	ctx := context.Background()
	for _, bg := range r.svc.bg {
		if bg != nil {
			bg.runOnce(ctx)
		}
	}
	var got []bool
	for range 3 {
		res, _ := r.svc.evaluate(ctx, true)
		last := res.Checks[len(res.Checks)-1]
		if last.Name != "exec:true" || !last.OK {
			t.Fatalf("last check %+v, want exec:true passing", last)
		}
		got = append(got, last.Reused)
	}
	if diff := cmp.Diff([]bool{false, true, true}, got); diff != "" {
		t.Errorf("Reused per evaluation (-want +got):\n%s", diff)
	}
}

// TestOneReadPerPass: the passes that begin before a `show protocols`
// starts share it, whether it is done or still in flight; a pass that
// begins after it needs a read of its own.
func TestOneReadPerPass(t *testing.T) {
	r := newRig(t, map[string]bool{"wg_vip4": true}, nil)
	ctx := context.Background()
	since := time.Now()
	block := make(chan struct{})
	r.bird.Block(block)
	results := make(chan int, 2)
	for range 2 {
		go func() {
			ps, err := r.d.protocols(ctx, since)
			if err != nil {
				t.Error(err)
			}
			results <- len(ps)
		}()
	}
	time.Sleep(20 * time.Millisecond) // both are waiting on BIRD
	close(block)
	if a, b := <-results, <-results; a != 1 || b != 1 {
		t.Errorf("protocols: %d and %d, want 1 each", a, b)
	}
	if _, err := r.d.protocols(ctx, since); err != nil {
		t.Fatal(err)
	}
	if got := r.take(); len(got) != 1 {
		t.Errorf("BIRD was asked %v, want one show protocols for the passes since %v", got, since)
	}
	if _, err := r.d.protocols(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := r.take(); len(got) != 1 {
		t.Errorf("a later pass: BIRD was asked %v, want one show protocols of its own", got)
	}
}
