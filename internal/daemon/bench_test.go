package daemon

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/bird"
	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/execcheck"
	"github.com/wgbird/wgbird/internal/link"
	"github.com/wgbird/wgbird/internal/wireguard"
)

// The fakes of the benchmarks answer from fixed values and record nothing,
// so a benchmark measures the service's own work, not a growing log of
// calls.

// benchBIRD answers show protocols with fixed states and counts the
// enable and disable commands a step sends.
type benchBIRD struct {
	protos []bird.Protocol
	sets   int
}

var _ BIRD = (*benchBIRD)(nil)

func (f *benchBIRD) Protocols(context.Context) ([]bird.Protocol, error) { return f.protos, nil }
func (f *benchBIRD) Enable(context.Context, string) error               { f.sets++; return nil }
func (f *benchBIRD) Disable(context.Context, string) error              { f.sets++; return nil }
func (f *benchBIRD) Status(context.Context) (string, error)             { return "2.0.12", nil }

type benchWG struct {
	dev *wgtypes.Device
	sum wireguard.Summary // of dev, made once: the benchmarks measure the service
}

func (f benchWG) Device(context.Context, string) (*wgtypes.Device, error) { return f.dev, nil }
func (f benchWG) Summary(context.Context, string, ...wgtypes.Key) (wireguard.Summary, error) {
	return f.sum, nil
}
func (f benchWG) Alive(context.Context, string) error { return nil }

type benchLinks struct{ st link.State }

func (f benchLinks) Read(string) (link.State, error) { return f.st, nil }

// benchService returns an announced, healthy service whose WireGuard
// device has peers peers, with BIRD reporting wg_vip4 in birdState.
func benchService(b *testing.B, peers int, birdState string) (*service, *benchBIRD) {
	b.Helper()
	key, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		b.Fatal(err)
	}
	dev := &wgtypes.Device{Name: "wg0", PrivateKey: key, PublicKey: key.PublicKey(), ListenPort: 51820}
	now := time.Now()
	for i := range peers {
		dev.Peers = append(dev.Peers, wgtypes.Peer{
			PublicKey:         wgtypes.Key{byte(i), byte(i >> 8), 1},
			LastHandshakeTime: now.Add(-time.Duration(i%180) * time.Second),
		})
	}
	vip := netip.MustParsePrefix("192.168.20.1/24")
	fb := &benchBIRD{protos: []bird.Protocol{
		{Name: "device1", Proto: "Device", State: "up"},
		{Name: "wg_vip4", Proto: "Static", State: birdState},
		{Name: "bgp_router", Proto: "BGP", State: "up"},
	}}
	cfg := &config.Config{Services: []config.Service{{
		Name: "wg0", Interface: "wg0", VIPs: []netip.Prefix{vip}, Protocols: []string{"wg_vip4"},
		Interval: time.Second, FastInterval: 200 * time.Millisecond, LivenessInterval: 200 * time.Millisecond, Timeout: 250 * time.Millisecond,
		Rise: 3, Fall: 2, MinPeers: 1, ListenPort: 51820,
	}}}
	d := mustNew(b, cfg, Deps{
		BIRD:      fb,
		WireGuard: benchWG{dev: dev, sum: wireguard.FromWgctrl(dev, nil)},
		Links: benchLinks{st: link.State{Exists: true, Index: 7, Up: true, Running: true,
			OperState: "unknown", Addrs: []netip.Prefix{vip}}},
		Exec: execcheck.Run,
		Log:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	s := d.services[0]
	// The first check learns BIRD's state: announced when wg_vip4 is up.
	s.machine.Start(true)
	return s, fb
}

// BenchmarkReconcileStep is one scheduled check of a healthy, announced
// service as wgbird runs it every interval: read the link, read and
// evaluate a WireGuard device with 1,000 peers, read BIRD's protocols and
// reconcile them (nothing to correct).
func BenchmarkReconcileStep(b *testing.B) {
	s, fb := benchService(b, 1000, "up")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.check(ctx, true); err != nil {
			b.Fatal(err)
		}
	}
	if fb.sets != 0 {
		b.Fatalf("%d enable/disable commands sent, want 0", fb.sets)
	}
}

// BenchmarkReconcileCorrect is the same step when BIRD has forgotten the
// enable (after `birdc configure`): every check sends one enable.
func BenchmarkReconcileCorrect(b *testing.B) {
	s, fb := benchService(b, 1000, "down")
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := s.check(ctx, true); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if fb.sets != n {
		b.Fatalf("%d enable commands for %d checks, want one each", fb.sets, n)
	}
}
