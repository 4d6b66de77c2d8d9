//go:build integration && kernelwg

package probe

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wgbird/wgbird/internal/health"
)

// The kernel WireGuard backend of the integration tests, built with the tag
// kernelwg and run by make kernel-test in a qemu guest whose kernel has
// wireguard.ko: the probe's initiation is answered by the kernel's own
// responder.

var backendTools []string

// backendHangs: there is no process to stop; the kernel answers or the
// device is gone.
const backendHangs = false

// probeTimeout is the probe's wait for an answer, or for the ICMP error
// of a deleted device: qemu's software emulation on a loaded machine is
// much slower than real hardware.
const probeTimeout = 2 * time.Second

type backend struct {
	link string // the kernel WireGuard link, ip link del'd by kill
}

// startDevice adds a kernel WireGuard link iface in s's namespace and sets
// it up; it goes with the namespace.
func startDevice(t *testing.T, s *server) {
	t.Helper()
	// s.inNS binds s.dir over /run/wireguard, which wg does not use for a
	// kernel device but which must exist.
	if err := os.MkdirAll("/run/wireguard", 0o700); err != nil {
		t.Fatal(err)
	}
	s.link = iface
	run(t, "ip", "-n", s.ns, "link", "add", s.link, "type", "wireguard")
	run(t, "ip", "-n", s.ns, "link", "set", s.link, "up")
}

// kill deletes the device, as ip link del or wg-quick down does.
func (s *server) kill(t *testing.T) {
	t.Helper()
	run(t, "ip", "-n", s.ns, "link", "del", s.link)
}

func (s *server) hang(t *testing.T) {
	t.Helper()
	t.Fatal("a kernel device cannot hang")
}

// TestKernelProbeLinkDown: a kernel device set down keeps its
// configuration but closes its UDP port, so the probe finds nothing
// listening, as for a deleted device.
func TestKernelProbeLinkDown(t *testing.T) {
	requirePrereqs(t)
	removeLeftovers(t)
	s := startServer(t, testPrivateKey("integration server"))
	keyFile, _ := s.addProbePeer(t)
	got := probeFromNS(t, s, helperRequest{Config: Config{PrivateKeyFile: keyFile}, Read: true}, func() {
		run(t, "ip", "-n", s.ns, "link", "set", s.link, "down")
	})
	want := health.Check{Name: "probe", Hard: true, Detail: fmt.Sprintf("nothing listens on 127.0.0.1:%d (connection refused)", port)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Probe (-want +got):\n%s", diff)
	}
}
