package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/execcheck"
	"github.com/wgbird/wgbird/internal/fakes"
	"github.com/wgbird/wgbird/internal/health"
)

// newProbeRig is newRig with a probe on the service, answered by the
// returned fake; newProber, if set, replaces the fake's constructor. It
// returns New's error instead of a rig when New fails.
func newProbeRig(t *testing.T, enabled map[string]bool, newProber func(config.Service) (Prober, error)) (*rig, *fakes.Prober) {
	t.Helper()
	r, p, err := tryProbeRig(t, enabled, newProber)
	if err != nil {
		t.Fatal(err)
	}
	return r, p
}

func tryProbeRig(t *testing.T, enabled map[string]bool, newProber func(config.Service) (Prober, error)) (*rig, *fakes.Prober, error) {
	t.Helper()
	p := fakes.NewProber(wgtypes.Key{0x70, 0x72, 0x6f, 0x62, 0x65})
	if newProber == nil {
		newProber = func(s config.Service) (Prober, error) {
			if s.Probe == nil || s.Probe.PrivateKeyFile != "/etc/wgbird/probe.key" {
				return nil, fmt.Errorf("unexpected probe config %+v", s.Probe)
			}
			return p, nil
		}
	}
	r := &rig{
		bird:  newBIRD(enabled),
		wg:    fakes.NewWireGuard(healthyDevice()),
		links: fakes.NewLinks(healthyLink()),
	}
	// The server lists one client and the probe peer.
	dev := healthyDevice()
	dev.Peers = []wgtypes.Peer{{PublicKey: wgtypes.Key{1}}, {PublicKey: p.Key}}
	r.wg.Set(dev, nil)
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
	if diff := cmp.Diff([]string{"show protocols"}, r.take()); diff != "" {
		t.Fatalf("healthy start (-want +got):\n%s", diff)
	}

	p.Set(false)
	r.probeSteps(t, sched, sched)
	if diff := cmp.Diff([]string{"show protocols", "show protocols", "disable wg_vip4"}, r.take()); diff != "" {
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

	p.Set(true)
	r.probeSteps(t, sched, sched, sched)
	if diff := cmp.Diff([]string{"show protocols", "show protocols", "show protocols", "enable wg_vip4"}, r.take()); diff != "" {
		t.Errorf("probe answering again (-want +got):\n%s", diff)
	}
}

// TestProbeScheduledOnly: event-triggered checks reuse the last probe
// result instead of sending a handshake, and the probe gets the device
// just read, or nil when the read failed.
func TestProbeScheduledOnly(t *testing.T) {
	r, p := newProbeRig(t, map[string]bool{"wg_vip4": true}, nil)
	r.probeSteps(t, sched, event, event, sched)
	if got := len(p.Devices()); got != 2 {
		t.Errorf("%d probes for 2 scheduled checks and 2 events, want 2", got)
	}
	// A failing probe seen by an event-triggered check is the last one.
	p.Set(false)
	r.probeSteps(t, event)
	if got := r.svc.Status().Healthy; !got {
		t.Error("an event-triggered check ran the probe")
	}

	r.wg.Set(nil, context.DeadlineExceeded)
	r.probeSteps(t, sched)
	if devs := p.Devices(); len(devs) != 3 || devs[0] == nil || devs[0].Name != "wg0" || devs[2] != nil {
		t.Errorf("probe devices = %v, want wg0, wg0, nil", devs)
	}
}

// TestProbePeerNotCounted: the probe peer is always configured, so a
// server whose only peer is the probe has too few peers.
func TestProbePeerNotCounted(t *testing.T) {
	r, p := newProbeRig(t, map[string]bool{"wg_vip4": true}, nil)
	dev := healthyDevice()
	dev.Peers = []wgtypes.Peer{{PublicKey: p.Key, LastHandshakeTime: time.Now()}}
	r.wg.Set(dev, nil)
	r.probeSteps(t, sched)
	if diff := cmp.Diff([]string{"show protocols", "disable wg_vip4"}, r.take()); diff != "" {
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
	if got := r.take(); len(got) != 0 {
		t.Errorf("BIRD commands = %v, want none", got)
	}
}

// TestProbeWithoutConstructor: a service with a probe and no way to create
// it never runs unprobed.
func TestProbeWithoutConstructor(t *testing.T) {
	cfg := &config.Config{Services: []config.Service{testService(func(s *config.Service) {
		s.Probe = &config.Probe{PrivateKeyFile: "/k", Timeout: 50 * time.Millisecond}
	})}}
	_, err := New(cfg, Deps{BIRD: newBIRD(map[string]bool{"wg_vip4": true}), WireGuard: fakes.NewWireGuard(healthyDevice()), Links: fakes.NewLinks(healthyLink()),
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
	if read, _ := r.wg.Device(context.Background(), "wg0"); len(read.Peers) != 2 || read.Peers[1].PublicKey != p.Key {
		t.Errorf("the read device was changed: %+v", read.Peers)
	}
}

// TestBIRDErrorLoggedOncePerAction: a restricted socket answers show
// protocols but refuses disable; the refusal is logged once, not again
// after every successful read.
func TestBIRDErrorLoggedOncePerAction(t *testing.T) {
	var logs strings.Builder
	r := newRig(t, map[string]bool{"wg_vip4": true}, nil)
	r.svc.log = slog.New(slog.NewTextHandler(&logs, nil))
	r.wg.SetPeers(0)
	r.steps(t, sched)                // withdraws: disable works
	r.bird.SetState("wg_vip4", true) // birdc configure
	r.bird.Refuse(errors.New("disabling protocol \"wg_vip4\": bird replied 8007: Access denied"))
	r.steps(t, sched, sched, sched)
	if n := strings.Count(logs.String(), "BIRD call failed"); n != 1 {
		t.Errorf("%d 'BIRD call failed' lines over three refused corrections, want 1:\n%s", n, logs.String())
	}
	if got, want := r.svc.Status().BIRDError, "disabling protocol \"wg_vip4\": bird replied 8007: Access denied"; got != want {
		t.Errorf("status bird_error = %q, want %q", got, want)
	}
}
