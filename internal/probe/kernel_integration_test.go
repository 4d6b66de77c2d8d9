//go:build integration && kernelwg

package probe

import (
	"os"
	"testing"
)

// The kernel WireGuard backend of the integration tests, built with the tag
// kernelwg and run by make kernel-test in a qemu guest whose kernel has
// wireguard.ko: the probe's initiation is answered by the kernel's own
// responder.

var backendTools []string

// backendHangs: there is no process to stop; the kernel answers or the
// device is gone.
const backendHangs = false

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
