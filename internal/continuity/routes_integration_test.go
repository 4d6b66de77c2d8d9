//go:build integration

package continuity

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/wgbird/wgbird/internal/rtnl"
	"github.com/wgbird/wgbird/internal/vipsrc"
	"github.com/wgbird/wgbird/internal/wgtest"
)

// The route check's lookups keep one socket: a client's source as the
// kernel routes it, no route to another without a new socket, and a new
// socket only after the kept one failed.
func TestRouteLookups(t *testing.T) {
	wgtest.Require(t, "ip")
	ns := wgtest.NewNS(t, "wgc-ctrl")
	wgtest.Veth(t, ns, []string{"192.168.20.1/24"}, wgtest.NewNS(t, "wgc-ctrlc"), []string{"192.168.20.7/24"}, "ctrl0")
	var k rtnl.Kept
	defer k.Close()
	lookup := func(ep string) (src netip.Addr, err error) {
		t.Helper()
		if derr := ns.Do(func() error { src, err = routeSource(&k, netip.MustParseAddrPort(ep), 51820); return nil }); derr != nil {
			t.Fatal(derr)
		}
		return src, err
	}
	// kept returns the socket k keeps (a Use that succeeds keeps it).
	kept := func() (c *rtnl.Conn) {
		t.Helper()
		if derr := ns.Do(func() error { return k.Use(func(kc *rtnl.Conn) error { c = kc; return nil }) }); derr != nil {
			t.Fatal(derr)
		}
		return c
	}
	if src, err := lookup("192.168.20.7:40000"); err != nil || src != netip.MustParseAddr("192.168.20.1") {
		t.Errorf("source of 192.168.20.7 = %v, %v; want 192.168.20.1", src, err)
	}
	first := kept()
	if _, err := lookup("203.0.113.9:40000"); !errors.Is(err, vipsrc.ErrNoRoute) {
		t.Errorf("source of 203.0.113.9 (no default route): %v, want vipsrc.ErrNoRoute", err)
	}
	if src, err := lookup("192.168.20.8:40000"); err != nil || src != netip.MustParseAddr("192.168.20.1") || kept() != first {
		t.Errorf("source of 192.168.20.8 = %v, %v on another socket than the first; want 192.168.20.1 on the first", src, err)
	}
	// A socket that fails (closed under it) is replaced at the next lookup.
	first.Close()
	if _, err := lookup("192.168.20.7:40000"); err == nil || errors.Is(err, vipsrc.ErrNoRoute) {
		t.Errorf("lookup on a closed socket: %v, want its error", err)
	}
	if src, err := lookup("192.168.20.7:40000"); err != nil || src != netip.MustParseAddr("192.168.20.1") || kept() == first {
		t.Errorf("after a failure: %v, %v on the failed socket; want 192.168.20.1 on another", src, err)
	}
}
