//go:build integration && kernelwg

package wireguard

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/health"
)

// The kernel WireGuard backend of the integration tests, built with the tag
// kernelwg and run by make kernel-test in a qemu guest whose kernel has
// wireguard.ko. TestMain re-executes the test binary in a network
// namespace of its own (testNetns), so every device it creates vanishes
// with the process, here or on a host that has the module. wgctrl reads
// these devices over generic netlink, not a UAPI socket.

const deviceType = wgtypes.LinuxKernel

const testNetns = syscall.CLONE_NEWNET

// wgDevice is a kernel WireGuard link.
type wgDevice struct {
	name string
	wg   string // path of wg(8)
}

// startDevice adds a kernel WireGuard link and sets it up, as wg-quick
// does; it is deleted in t.Cleanup if it still exists.
func startDevice(tb testing.TB, name string) *wgDevice {
	tb.Helper()
	missing, wg := requireWg(tb)
	if err := setUpLink("lo"); err != nil {
		tb.Fatal(err)
	}
	if err := netlink.LinkAdd(&netlink.Wireguard{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
		missing("adding kernel WireGuard link %s (no wireguard module?): %v", name, err)
	}
	tb.Cleanup(func() {
		if l, err := netlink.LinkByName(name); err == nil {
			netlink.LinkDel(l)
		}
	})
	if err := setUpLink(name); err != nil {
		tb.Fatal(err)
	}
	return &wgDevice{name: name, wg: wg}
}

func setUpLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(l)
}

func (d *wgDevice) del(tb testing.TB) {
	tb.Helper()
	l, err := netlink.LinkByName(d.name)
	if err != nil {
		tb.Fatalf("finding %s: %v", d.name, err)
	}
	if err := netlink.LinkDel(l); err != nil {
		tb.Fatalf("deleting %s: %v", d.name, err)
	}
}

var healthySpec = func(name string) Spec { return Spec{Interface: name, ListenPort: 51820, MinPeers: 1} }

// TestKernelDeviceDeletedAndRecreated: a deleted kernel device reads as
// not found at once (there is no socket to hang on or go stale), and the
// same Reader reads it again once it is re-created.
func TestKernelDeviceDeletedAndRecreated(t *testing.T) {
	r := newTestReader(t)
	d := startDevice(t, "wgtBdel")
	configureHealthy(t, d)
	dev, err := read(t, r, d.name, 2*time.Second)
	if c := Evaluate(healthySpec(d.name), dev, err, time.Now()); !c.OK {
		t.Fatalf("Evaluate before deleting = %+v, want OK", c)
	}

	d.del(t)
	start := time.Now()
	dev, err = read(t, r, d.name, 2*time.Second)
	t.Logf("deleted: %v after %v", err, time.Since(start))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Device(deleted %s) error = %v, want os.ErrNotExist", d.name, err)
	}
	want := health.Check{Name: "wireguard", Hard: true, Detail: "device wgtBdel not found"}
	if diff := cmp.Diff(want, Evaluate(healthySpec(d.name), dev, err, time.Now())); diff != "" {
		t.Errorf("Evaluate(deleted) (-want +got):\n%s", diff)
	}
	_, err = read(t, r, "wgtBnever", 2*time.Second)
	if diff := cmp.Diff(health.Check{Name: "wireguard", Hard: true, Detail: "device wgtBnever not found"},
		Evaluate(Spec{Interface: "wgtBnever", MinPeers: 1}, nil, err, time.Now())); diff != "" {
		t.Errorf("Evaluate(never created) (-want +got):\n%s", diff)
	}

	// Re-created without configuration: a device, but not a healthy one.
	d = startDevice(t, "wgtBdel")
	dev, err = read(t, r, d.name, 2*time.Second)
	if err != nil {
		t.Fatalf("Device(re-created %s): %v", d.name, err)
	}
	wantDetail := "private key not set; listen port " // the kernel picked a random port
	if c := Evaluate(healthySpec(d.name), dev, nil, time.Now()); c.OK || c.Hard || !strings.HasPrefix(c.Detail, wantDetail) {
		t.Errorf("Evaluate(re-created, unconfigured) = %+v, want a soft failure %q...", c, wantDetail)
	}
	configureHealthy(t, d)
	dev, err = read(t, r, d.name, 2*time.Second)
	want = health.Check{Name: "wireguard", OK: true, Detail: "listen 51820, 1 peer, no handshake yet"}
	if diff := cmp.Diff(want, Evaluate(healthySpec(d.name), dev, err, time.Now())); diff != "" {
		t.Errorf("Evaluate(re-created, configured) (-want +got):\n%s", diff)
	}
}

// TestKernelLinkDown: a kernel device set down keeps its configuration
// (key, port, peers) and reads as healthy; only the link check (IFF_UP,
// internal/link) sees it. Set up again it is the same device.
func TestKernelLinkDown(t *testing.T) {
	r := newTestReader(t)
	d := startDevice(t, "wgtBdown")
	configureHealthy(t, d)
	l, err := netlink.LinkByName(d.name)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetDown(l); err != nil {
		t.Fatalf("setting %s down: %v", d.name, err)
	}
	dev, err := read(t, r, d.name, 2*time.Second)
	want := health.Check{Name: "wireguard", OK: true, Detail: "listen 51820, 1 peer, no handshake yet"}
	if diff := cmp.Diff(want, Evaluate(healthySpec(d.name), dev, err, time.Now())); diff != "" {
		t.Errorf("Evaluate(down) (-want +got):\n%s", diff)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		t.Fatalf("setting %s up: %v", d.name, err)
	}
	dev, err = read(t, r, d.name, 2*time.Second)
	if diff := cmp.Diff(want, Evaluate(healthySpec(d.name), dev, err, time.Now())); diff != "" {
		t.Errorf("Evaluate(up again) (-want +got):\n%s", diff)
	}
}

// TestKernelHandshakeAge: two kernel devices on the loopback handshake
// (persistent keepalive going 0 -> 1 sends a keepalive at once, which
// starts one), and the handshake age check judges the time the kernel
// reports; wgbird's probe peer (IgnorePeers) does not count.
func TestKernelHandshakeAge(t *testing.T) {
	r := newTestReader(t)
	a, b := startDevice(t, "wgtBhsa"), startDevice(t, "wgtBhsb")
	ka, kb := newKey(t), newKey(t)
	a.wgRun(t, ka.String()+"\n", "set", a.name, "private-key", "/dev/stdin", "listen-port", "51820",
		"peer", kb.PublicKey().String(), "allowed-ips", "10.9.0.2/32", "endpoint", "127.0.0.1:51821")
	b.wgRun(t, kb.String()+"\n", "set", b.name, "private-key", "/dev/stdin", "listen-port", "51821",
		"peer", ka.PublicKey().String(), "allowed-ips", "10.9.0.1/32", "endpoint", "127.0.0.1:51820")

	spec := Spec{Interface: a.name, ListenPort: 51820, MinPeers: 1, MaxHandshakeAge: 2 * time.Minute}
	dev, err := read(t, r, a.name, 2*time.Second)
	want := health.Check{Name: "wireguard", Detail: "no handshake yet, want one within 2m0s"}
	if diff := cmp.Diff(want, Evaluate(spec, dev, err, time.Now())); diff != "" {
		t.Errorf("Evaluate(before a handshake) (-want +got):\n%s", diff)
	}

	b.wgRun(t, "", "set", b.name, "peer", ka.PublicKey().String(), "persistent-keepalive", "1")
	var newest time.Time
	for deadline := time.Now().Add(10 * time.Second); newest.IsZero(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no handshake between %s and %s within 10s", a.name, b.name)
		}
		dev, err = read(t, r, a.name, 2*time.Second)
		if err != nil {
			t.Fatalf("Device(%s): %v", a.name, err)
		}
		newest = dev.NewestCounted
	}
	t.Logf("handshake at %v", newest)
	want = health.Check{Name: "wireguard", OK: true, Detail: "listen 51820, 1 peer, newest handshake 0s ago"}
	if diff := cmp.Diff(want, Evaluate(spec, dev, nil, newest)); diff != "" {
		t.Errorf("Evaluate(just after the handshake) (-want +got):\n%s", diff)
	}
	want = health.Check{Name: "wireguard", Detail: "newest handshake 10m0s ago, want within 2m0s"}
	if diff := cmp.Diff(want, Evaluate(spec, dev, nil, newest.Add(10*time.Minute))); diff != "" {
		t.Errorf("Evaluate(10 minutes later) (-want +got):\n%s", diff)
	}
	spec.IgnorePeers = []wgtypes.Key{kb.PublicKey()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	ignoring, err := r.Summary(ctx, a.name, spec.IgnorePeers...)
	cancel()
	if err != nil {
		t.Fatalf("Summary(%s): %v", a.name, err)
	}
	want = health.Check{Name: "wireguard", Detail: "0 peers, want at least 1; no handshake yet, want one within 2m0s"}
	if diff := cmp.Diff(want, Evaluate(spec, &ignoring, nil, newest)); diff != "" {
		t.Errorf("Evaluate(only the probe peer handshook) (-want +got):\n%s", diff)
	}
}

// TestKernelModuleLoadedAfterReader: a Reader opened before wireguard.ko
// is loaded (wgbird started before wg-quick, on a kernel that could not
// load the module on demand) reads kernel devices once they exist. Only
// in make kernel-test's guest, which passes its modules in
// WGBIRD_GUEST_MODULES and has no modprobe for on-demand loading: the test
// unloads the module and loads it again.
func TestKernelModuleLoadedAfterReader(t *testing.T) {
	var ko string
	for _, m := range strings.Fields(os.Getenv("WGBIRD_GUEST_MODULES")) {
		if strings.HasSuffix(m, "/wireguard.ko") {
			ko = m
		}
	}
	if ko == "" {
		t.Skip("only in make kernel-test's guest (WGBIRD_GUEST_MODULES names no wireguard.ko)")
	}
	// Devices of earlier tests go with their namespaces, asynchronously.
	var out []byte
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if out, err = exec.Command("rmmod", "wireguard").CombinedOutput(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rmmod wireguard: %v\n%s", err, out)
		}
	}
	loaded := false
	insmod := func() {
		if out, err := exec.Command("insmod", ko).CombinedOutput(); err != nil {
			t.Fatalf("insmod %s: %v\n%s", ko, err, out)
		}
		loaded = true
	}
	t.Cleanup(func() {
		if !loaded {
			insmod()
		}
	})

	r := newTestReader(t)
	if _, err := read(t, r, "wgtBlate", 2*time.Second); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Device(wgtBlate) without the module: %v, want os.ErrNotExist", err)
	}
	insmod()
	d := startDevice(t, "wgtBlate")
	configureHealthy(t, d)
	dev, err := read(t, r, d.name, 2*time.Second)
	want := health.Check{Name: "wireguard", OK: true, Detail: "listen 51820, 1 peer, no handshake yet"}
	if diff := cmp.Diff(want, Evaluate(healthySpec(d.name), dev, err, time.Now())); diff != "" {
		t.Errorf("Evaluate(device added after the module was loaded) (-want +got):\n%s", diff)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if wd, err := r.Device(ctx, d.name); err != nil || wd.Type != wgtypes.LinuxKernel {
		t.Errorf("Device(%s) = %v, %v; want type %v", d.name, wd, err, wgtypes.LinuxKernel)
	}
}
