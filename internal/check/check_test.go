package check_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/check"
	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/fakes"
	"github.com/wgbird/wgbird/internal/health"
	"github.com/wgbird/wgbird/internal/link"
	"github.com/wgbird/wgbird/internal/wireguard"
)

type prober struct{ key wgtypes.Key }

func (p prober) Probe(context.Context, *wireguard.Summary) health.Check {
	return health.Check{Name: "probe", OK: true}
}
func (p prober) PublicKey() wgtypes.Key { return p.key }

var vip = netip.MustParsePrefix("192.168.20.1/24")

func service() config.Service {
	return config.Service{
		Name: "wg0", Interface: "wg0", VIPs: []netip.Prefix{vip}, Protocols: []string{"wg_vip4"},
		Interval: time.Second, Timeout: 250 * time.Millisecond, MinPeers: 1,
		Probe: &config.Probe{PrivateKeyFile: "/k", Timeout: 100 * time.Millisecond},
		Exec: []config.Exec{{Name: "dns", Command: []string{"true"}, Timeout: time.Second},
			{Name: "web", Command: []string{"true"}, Timeout: time.Second}},
	}
}

// TestBuild: the checks of a service, in the order they run, each with
// the policy the daemon schedules it by, and the results they report.
func TestBuild(t *testing.T) {
	key := wgtypes.Key{7}
	deps := check.Deps{
		Links:     fakes.NewLinks(fakes.UpLink(vip)),
		WireGuard: fakes.NewWireGuard(fakes.Device(51820, 2, time.Now())),
		Exec:      fakes.Exec(true, "exit status 0"),
		NewProber: func(config.Service) (check.Prober, error) { return prober{key}, nil },
	}
	set, err := check.Build(service(), deps)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Name   string
		OK     bool
		Policy check.Policy
		Period time.Duration
		Gate   bool
	}
	var got []row
	p := &check.Pass{Scheduled: true}
	for _, sp := range set.Specs {
		c := sp.Check.Run(context.Background(), p)
		got = append(got, row{c.Name, c.OK, sp.Policy, sp.Period, sp.Gate})
	}
	want := []row{
		{"link", true, check.OnEvents, 0, true},
		{"wireguard", true, check.EveryPass, 0, false},
		{"probe", true, check.EveryPass, 0, false},
		{"exec:dns", true, check.Background, time.Second, false},
		{"exec:web", true, check.Background, time.Second, false},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("checks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]wgtypes.Key{key}, set.NotClients); diff != "" {
		t.Errorf("NotClients (-want +got):\n%s", diff)
	}
	if p.Device == nil || p.LinkIndex != fakes.UpLink(vip).Index {
		t.Errorf("pass after the checks = %+v, want the device and the link index", p)
	}
}

// TestBuildProbeError: a prober that cannot be made fails Build, naming
// the service.
func TestBuildProbeError(t *testing.T) {
	keyErr := errors.New("creating probe: reading probe key: /k has mode 0644, want 0600")
	_, err := check.Build(service(), check.Deps{NewProber: func(config.Service) (check.Prober, error) { return nil, keyErr }})
	var pe *check.ProbeError
	if !errors.As(err, &pe) || !errors.Is(err, keyErr) || pe.Service != "wg0" {
		t.Fatalf("Build = %v, want a ProbeError of wg0 wrapping the key error", err)
	}
	if _, err := check.Build(service(), check.Deps{}); !errors.As(err, &pe) {
		t.Fatalf("Build without NewProber = %v, want a ProbeError", err)
	}
}

// TestWireGuardFailsWithoutDevice: a failed read leaves no device in the
// pass for the probe.
func TestWireGuardFailsWithoutDevice(t *testing.T) {
	s := service()
	s.Probe, s.Exec = nil, nil
	wg := fakes.NewWireGuard(nil)
	wg.Set(nil, errors.New("wireguard-go does not answer"))
	set, err := check.Build(s, check.Deps{Links: fakes.NewLinks(link.State{}), WireGuard: wg})
	if err != nil {
		t.Fatal(err)
	}
	p := &check.Pass{Scheduled: true}
	lc := set.Specs[0].Check.Run(context.Background(), p)
	wc := set.Specs[1].Check.Run(context.Background(), p)
	if lc.OK || !lc.Hard || wc.OK || p.Device != nil || p.LinkIndex != 0 {
		t.Errorf("link %+v, wireguard %+v, pass %+v: want both failed, no device, no index", lc, wc, p)
	}
}

// TestWireGuardPortSeen: without listen_port, the port of the first
// healthy read is expected; a change fails with both numbers, and the old
// port passes again. With listen_port, only that port passes.
func TestWireGuardPortSeen(t *testing.T) {
	run := func(listenPort int, ports ...int) []health.Check {
		s := service()
		s.Probe, s.Exec, s.ListenPort = nil, nil, listenPort
		wg := fakes.NewWireGuard(fakes.Device(ports[0], 2, time.Now()))
		set, err := check.Build(s, check.Deps{Links: fakes.NewLinks(fakes.UpLink(vip)), WireGuard: wg})
		if err != nil {
			t.Fatal(err)
		}
		var got []health.Check
		for _, port := range ports {
			wg.Set(fakes.Device(port, 2, time.Now()), nil)
			c := set.Specs[1].Check.Run(context.Background(), &check.Pass{Scheduled: true})
			c.Took = 0
			got = append(got, c)
		}
		return got
	}
	got := run(0, 51820, 51820, 51821, 51820)
	if !got[0].OK || !got[1].OK || got[2].OK || !got[3].OK {
		t.Errorf("listen_port unset, ports 51820 51820 51821 51820: %+v; want ok ok failed ok", got)
	}
	if want := "listen port 51821, want 51820 (seen at the first healthy read; set listen_port to choose)"; got[2].Detail != want {
		t.Errorf("detail %q, want %q", got[2].Detail, want)
	}
	got = run(51821, 51820, 51821)
	if got[0].OK || !got[1].OK || got[0].Detail != "listen port 51820, want 51821" {
		t.Errorf("listen_port 51821, ports 51820 51821: %+v; want failed (listen port 51820, want 51821), ok", got)
	}
}
