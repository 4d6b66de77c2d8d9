// Package wgtest builds network namespaces with a WireGuard device (the
// kernel's when the module is there, wireguard-go otherwise) for the
// integration tests of the packages that act on WireGuard and routing.
package wgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.zx2c4.com/wireguard/wgctrl"

	"github.com/wgbird/wgbird/internal/labjudge"
)

// Require skips the test unless it runs as root with the given binaries
// (and ip), failing instead under CI=true.
func Require(t *testing.T, bins ...string) {
	t.Helper()
	if kernelOnly {
		bins = slices.DeleteFunc(slices.Clone(bins), func(b string) bool { return b == "wireguard-go" })
	}
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, b := range append([]string{"ip"}, bins...) {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but missing: %s", strings.Join(missing, ", "))
	}
	t.Skipf("missing: %s", strings.Join(missing, ", "))
}

// Run runs a command and fails the test with its output on error.
func Run(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// NS is a named network namespace (under /run/netns) removed at cleanup.
type NS struct {
	Name   string
	Handle netns.NsHandle
}

// NewNS creates the namespace name (deleting a stale one first) with lo up.
func NewNS(t *testing.T, name string) *NS {
	t.Helper()
	_ = exec.Command("ip", "netns", "del", name).Run()
	Run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	Run(t, "ip", "-n", name, "link", "set", "lo", "up")
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("opening netns %s: %v", name, err)
	}
	t.Cleanup(func() { h.Close() })
	return &NS{Name: name, Handle: h}
}

// Do runs f on an OS thread inside the namespace (labjudge.InNS).
func (n *NS) Do(f func() error) error { return labjudge.InNS(n.Handle, f) }

// Exec runs a command in the namespace.
func (n *NS) Exec(t *testing.T, argv ...string) string {
	t.Helper()
	return Run(t, append([]string{"ip", "netns", "exec", n.Name}, argv...)...)
}

// Veth links a and b with a veth pair called name in both, with the
// given addresses (v6 ones without DAD), and sets both ends up.
func Veth(t *testing.T, a *NS, aAddrs []string, b *NS, bAddrs []string, name string) {
	t.Helper()
	Run(t, "ip", "-n", a.Name, "link", "add", name, "type", "veth", "peer", "name", name, "netns", b.Name)
	for _, x := range []struct {
		ns    *NS
		addrs []string
	}{{a, aAddrs}, {b, bAddrs}} {
		for _, addr := range x.addrs {
			args := []string{"ip", "-n", x.ns.Name, "addr", "add", addr, "dev", name}
			if strings.Contains(addr, ":") {
				args = append(args, "nodad")
			}
			Run(t, args...)
		}
		Run(t, "ip", "-n", x.ns.Name, "link", "set", name, "up")
	}
}

// Device is a WireGuard interface in a namespace.
type Device struct {
	NS     *NS
	Name   string
	Kernel bool // kernel WireGuard; else wireguard-go
	pid    int
}

// NewDevice creates the WireGuard interface name in ns: kernel WireGuard
// if `ip link add type wireguard` works there (and always with the build
// tag kernelwg), wireguard-go otherwise
// (its UAPI socket is /var/run/wireguard/NAME.sock: use a unique name).
// It is removed (and wireguard-go killed) at cleanup.
func NewDevice(t *testing.T, ns *NS, name string) *Device {
	t.Helper()
	d := &Device{NS: ns, Name: name}
	out, err := exec.Command("ip", "-n", ns.Name, "link", "add", name, "type", "wireguard").CombinedOutput()
	if err == nil {
		d.Kernel = true
		t.Cleanup(func() { _ = exec.Command("ip", "-n", ns.Name, "link", "del", name).Run() })
		return d
	}
	if kernelOnly {
		t.Fatalf("built with the tag kernelwg, but no kernel WireGuard device: ip link add %s type wireguard: %v: %s", name, err, out)
	}
	sock := filepath.Join("/var/run/wireguard", name+".sock")
	_ = os.Remove(sock)
	cmd := exec.Command("ip", "netns", "exec", ns.Name, "wireguard-go", "-f", name)
	cmd.Env = append(os.Environ(), "WG_PROCESS_FOREGROUND=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting wireguard-go: %v", err)
	}
	d.pid = cmd.Process.Pid
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-d.pid, syscall.SIGKILL)
		<-done
		_ = os.Remove(sock)
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil && exec.Command("ip", "-n", ns.Name, "link", "show", name).Run() == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("wireguard-go did not create %s", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return d
}

// Client opens a wgctrl client in the device's namespace (kernel
// WireGuard is reached through the namespace's generic netlink).
func (d *Device) Client(t *testing.T) *wgctrl.Client {
	t.Helper()
	var c *wgctrl.Client
	if err := d.NS.Do(func() (err error) { c, err = wgctrl.New(); return err }); err != nil {
		t.Fatalf("wgctrl: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Wait polls cond every 5 ms until it holds or timeout passes.
func Wait(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// Kind says which WireGuard the device is, for test logs.
func (d *Device) Kind() string {
	if d.Kernel {
		return "kernel WireGuard"
	}
	return fmt.Sprintf("wireguard-go (pid %d)", d.pid)
}
