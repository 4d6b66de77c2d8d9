package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/execcheck"
	"github.com/wgbird/wgbird/internal/health"
)

// fakeProber answers as configured and records the devices it was given.
type fakeProber struct {
	key wgtypes.Key

	mu   sync.Mutex
	ok   bool
	devs []*wgtypes.Device
}

var _ Prober = (*fakeProber)(nil)

func (f *fakeProber) Probe(_ context.Context, dev *wgtypes.Device) health.Check {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.devs = append(f.devs, dev)
	if f.ok {
		return health.Check{Name: "probe", OK: true, Detail: "handshake answered"}
	}
	return health.Check{Name: "probe", Detail: "no handshake response from wg0 within 250ms"}
}

func (f *fakeProber) PublicKey() wgtypes.Key { return f.key }

func (f *fakeProber) set(ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ok = ok
}

// calls returns how many probes ran.
func (f *fakeProber) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.devs)
}

// newProbeRig is newRig with a probe on the service, answered by the
// returned fake; newProber, if set, replaces the fake's constructor. It
// returns New's error instead of a rig when New fails.
func newProbeRig(t *testing.T, enabled map[string]bool, newProber func(config.Service) (Prober, error)) (*rig, *fakeProber) {
	t.Helper()
	r, p, err := tryProbeRig(t, enabled, newProber)
	if err != nil {
		t.Fatal(err)
	}
	return r, p
}

func tryProbeRig(t *testing.T, enabled map[string]bool, newProber func(config.Service) (Prober, error)) (*rig, *fakeProber, error) {
	t.Helper()
	p := &fakeProber{key: wgtypes.Key{0x70, 0x72, 0x6f, 0x62, 0x65}, ok: true}
	if newProber == nil {
		newProber = func(s config.Service) (Prober, error) {
			if s.Probe == nil || s.Probe.PrivateKeyFile != "/etc/wgbird/probe.key" {
				return nil, fmt.Errorf("unexpected probe config %+v", s.Probe)
			}
			return p, nil
		}
	}
	r := &rig{
		bird:  newFakeBIRD(enabled),
		wg:    &fakeWG{dev: healthyDevice()},
		links: &fakeLinks{st: healthyLink()},
	}
	// The server lists one client and the probe peer.
	r.wg.dev.Peers = []wgtypes.Peer{{PublicKey: wgtypes.Key{1}}, {PublicKey: p.key}}
	cfg := &config.Config{Services: []config.Service{testService(func(s *config.Service) {
		s.Probe = &config.Probe{PrivateKeyFile: "/etc/wgbird/probe.key", Timeout: 50 * time.Millisecond}
	})}}
	cfg.Shutdown.OnStop = config.Keep
	var err error
	r.d, err = New(cfg, Deps{
		BIRD: r.bird, WireGuard: r.wg, Links: r.links,
		Exec:      execcheck.Run,
		NewProber: newProber,
		Log:       slog.New(slog.NewTextHandler(testWriter(t), nil)),
	})
	if err != nil {
		return r, p, err
	}
	r.svc = r.d.services[0]
	return r, p, nil
}

// probeSteps is steps with the probes spaced as the daemon requires.
func (r *rig) probeSteps(t *testing.T, scheduled ...bool) {
	t.Helper()
	for _, s := range scheduled {
		time.Sleep(20 * time.Millisecond) // the probe check's spacing
		r.steps(t, s)
	}
}

// TestProbeWithdraws: a server that stops answering the handshake, while
// every passive check stays green, is withdrawn after fall and announced
// again after rise once it answers.
func TestProbeWithdraws(t *testing.T) {
	r, p := newProbeRig(t, map[string]bool{"wg_vip4": true}, nil)
	r.probeSteps(t, sched)
	if diff := cmp.Diff([]string{"show protocols"}, r.bird.take()); diff != "" {
		t.Fatalf("healthy start (-want +got):\n%s", diff)
	}

	p.set(false)
	r.probeSteps(t, sched, sched)
	if diff := cmp.Diff([]string{"show protocols", "show protocols", "disable wg_vip4"}, r.bird.take()); diff != "" {
		t.Errorf("probe failing (-want +got):\n%s", diff)
	}
	st := r.svc.Status()
	if want := "2 unhealthy in a row: probe: no handshake response from wg0 within 250ms"; st.State != health.Withdrawn.String() || st.Reason != want {
		t.Errorf("status = %q %q, want withdrawn %q", st.State, st.Reason, want)
	}
	var names []string
	for _, c := range st.Checks {
		names = append(names, fmt.Sprintf("%s %v", c.Name, c.OK))
	}
	if diff := cmp.Diff([]string{"link true", "wireguard true", "probe false"}, names); diff != "" {
		t.Errorf("checks (-want +got):\n%s", diff)
	}

	p.set(true)
	r.probeSteps(t, sched, sched, sched)
	if diff := cmp.Diff([]string{"show protocols", "show protocols", "show protocols", "enable wg_vip4"}, r.bird.take()); diff != "" {
		t.Errorf("probe answering again (-want +got):\n%s", diff)
	}
}

// TestProbeScheduledOnly: event-triggered checks reuse the last probe
// result instead of sending a handshake, and the probe gets the device
// just read, or nil when the read failed.
func TestProbeScheduledOnly(t *testing.T) {
	r, p := newProbeRig(t, map[string]bool{"wg_vip4": true}, nil)
	r.probeSteps(t, sched, event, event, sched)
	if got := p.calls(); got != 2 {
		t.Errorf("%d probes for 2 scheduled checks and 2 events, want 2", got)
	}
	// A failing probe seen by an event-triggered check is the last one.
	p.set(false)
	r.probeSteps(t, event)
	if got := r.svc.Status().Healthy; !got {
		t.Error("an event-triggered check ran the probe")
	}

	r.wg.mu.Lock()
	r.wg.err = context.DeadlineExceeded
	r.wg.mu.Unlock()
	r.probeSteps(t, sched)
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.devs) != 3 || p.devs[0] == nil || p.devs[0].Name != "wg0" || p.devs[2] != nil {
		t.Errorf("probe devices = %v, want wg0, wg0, nil", p.devs)
	}
}

// TestProbePeerNotCounted: the probe peer is always configured, so a
// server whose only peer is the probe has too few peers.
func TestProbePeerNotCounted(t *testing.T) {
	r, p := newProbeRig(t, map[string]bool{"wg_vip4": true}, nil)
	r.wg.mu.Lock()
	r.wg.dev.Peers = []wgtypes.Peer{{PublicKey: p.key, LastHandshakeTime: time.Now()}}
	r.wg.mu.Unlock()
	r.probeSteps(t, sched)
	if diff := cmp.Diff([]string{"show protocols", "disable wg_vip4"}, r.bird.take()); diff != "" {
		t.Errorf("BIRD commands (-want +got):\n%s", diff)
	}
	if got, want := r.svc.Status().Reason, "unhealthy at start-up: wireguard: 0 peers, want at least 1"; got != want {
		t.Errorf("reason = %q, want %q", got, want)
	}
}

// TestProbeCreationFails: a prober that cannot be created is an error of
// New naming the file; BIRD is not touched.
func TestProbeCreationFails(t *testing.T) {
	keyErr := errors.New("creating probe: reading probe key: /etc/wgbird/probe.key has mode 0644, want 0600 (chmod 600 /etc/wgbird/probe.key)")
	r, _, err := tryProbeRig(t, map[string]bool{"wg_vip4": true}, func(config.Service) (Prober, error) { return nil, keyErr })
	var pe *ProbeError
	if !errors.As(err, &pe) || !errors.Is(err, keyErr) {
		t.Fatalf("New = %v, want a ProbeError wrapping the key error", err)
	}
	want := `service "wg0": creating probe: reading probe key: /etc/wgbird/probe.key has mode 0644, want 0600 (chmod 600 /etc/wgbird/probe.key)`
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
	if got := r.bird.take(); len(got) != 0 {
		t.Errorf("BIRD commands = %v, want none", got)
	}
}

// TestProbeWithoutConstructor: a service with a probe and no way to create
// it never runs unprobed.
func TestProbeWithoutConstructor(t *testing.T) {
	cfg := &config.Config{Services: []config.Service{testService(func(s *config.Service) {
		s.Probe = &config.Probe{PrivateKeyFile: "/k", Timeout: 50 * time.Millisecond}
	})}}
	_, err := New(cfg, Deps{BIRD: newFakeBIRD(map[string]bool{"wg_vip4": true}), WireGuard: &fakeWG{dev: healthyDevice()}, Links: &fakeLinks{st: healthyLink()},
		Exec: execcheck.Run, Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	var pe *ProbeError
	if !errors.As(err, &pe) {
		t.Fatalf("New = %v, want a ProbeError", err)
	}
}

// TestDeviceLeavesOutTheProbe: drain --wait watches client traffic; the
// probe's own peer handshakes every interval and must not keep it waiting.
func TestDeviceLeavesOutTheProbe(t *testing.T) {
	r, p := newProbeRig(t, map[string]bool{"wg_vip4": true}, nil)
	dev, err := r.d.Device(context.Background(), "wg0")
	if err != nil {
		t.Fatal(err)
	}
	var got []wgtypes.Key
	for _, peer := range dev.Peers {
		got = append(got, peer.PublicKey)
	}
	if diff := cmp.Diff([]wgtypes.Key{{1}}, got); diff != "" {
		t.Errorf("peers (-want +got):\n%s", diff)
	}
	if n := len(r.wg.dev.Peers); n != 2 || r.wg.dev.Peers[1].PublicKey != p.key {
		t.Errorf("the read device was changed: %d peers", n)
	}
}

// TestBIRDErrorLoggedOncePerAction: a restricted socket answers show
// protocols but refuses disable; the refusal is logged once, not again
// after every successful read.
func TestBIRDErrorLoggedOncePerAction(t *testing.T) {
	var logs strings.Builder
	r := newRig(t, map[string]bool{"wg_vip4": true}, nil)
	r.svc.log = slog.New(slog.NewTextHandler(&logs, nil))
	r.wg.setPeers(0)
	r.steps(t, sched) // withdraws: disable works
	r.bird.mu.Lock()
	r.bird.enabled["wg_vip4"] = true // birdc configure
	r.bird.refuse = errors.New("disabling protocol \"wg_vip4\": bird replied 8007: Access denied")
	r.bird.mu.Unlock()
	r.steps(t, sched, sched, sched)
	if n := strings.Count(logs.String(), "BIRD call failed"); n != 1 {
		t.Errorf("%d 'BIRD call failed' lines over three refused corrections, want 1:\n%s", n, logs.String())
	}
	if got, want := r.svc.Status().BIRDError, "disabling protocol \"wg_vip4\": bird replied 8007: Access denied"; got != want {
		t.Errorf("status bird_error = %q, want %q", got, want)
	}
}
