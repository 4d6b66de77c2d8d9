//go:build integration && kernelwg

package link

import (
	"testing"

	"github.com/vishvananda/netlink"
)

// TestKernelWireGuardLink runs the link lifecycle against a kernel
// WireGuard link (built with the tag kernelwg, run in make kernel-test's
// qemu guest): the same checks and events as wireguard-go's TUN, and the
// device deleted with ip link del is a netlink event like a dying
// wireguard-go's TUN.
func TestKernelWireGuardLink(t *testing.T) {
	requireRoot(t)
	ns := enterNewNetns(t)
	sub := startSubscriber(t, ns)
	const name = "wgtBkwg0"
	if err := netlink.LinkAdd(&netlink.Wireguard{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
		t.Fatalf("adding kernel WireGuard link %s (no wireguard module?): %v", name, err)
	}
	l := mustLink(t, name)
	if l.Type() != "wireguard" {
		t.Errorf("link %s has type %q, want wireguard", name, l.Type())
	}
	setUp(t, name, true)
	testLifecycle(t, sub, name, "unknown", func() {
		if err := netlink.LinkDel(l); err != nil {
			t.Fatalf("deleting %s: %v", name, err)
		}
	})
}
