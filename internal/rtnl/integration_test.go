//go:build integration

package rtnl

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wgbird/wgbird/internal/wgtest"
)

// The kernel's notifications of a link, an address and a route in a
// namespace of the test's own, parsed; Close ends a Read in progress.
func TestSocket(t *testing.T) {
	wgtest.Require(t)
	ns := wgtest.NewNS(t, "wgc-rtnl")
	var s *Socket
	if err := ns.Do(func() (err error) { s, err = Open(Links | Addrs | Routes); return err }); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	msgs := make(chan syscall.NetlinkMessage, 1024)
	done := make(chan error, 1)
	go func() {
		for {
			ms, err := s.Read()
			if err != nil && !errors.Is(err, ErrLost) {
				done <- err
				return
			}
			for _, m := range ms {
				m.Data = append([]byte(nil), m.Data...) // valid until the next Read
				msgs <- m
			}
		}
	}()
	// await waits for a message of type typ that ok accepts.
	await := func(what string, typ uint16, ok func(syscall.NetlinkMessage) bool) {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case m := <-msgs:
				if m.Header.Type == typ && ok(m) {
					return
				}
			case <-timeout:
				t.Fatalf("no notification of %s within 5 s", what)
			}
		}
	}
	ns.Exec(t, "ip", "link", "add", "rtnla", "type", "veth", "peer", "name", "rtnlb")
	await("the new link", unix.RTM_NEWLINK, func(m syscall.NetlinkMessage) bool {
		i, name, ok := Link(m)
		return ok && name == "rtnla" && i > 0
	})
	ns.Exec(t, "ip", "link", "set", "rtnla", "up")
	ns.Exec(t, "ip", "addr", "add", "192.0.2.1/24", "dev", "rtnla")
	await("the address", unix.RTM_NEWADDR, func(m syscall.NetlinkMessage) bool { i, ok := Addr(m); return ok && i > 0 })
	ns.Exec(t, "ip", "route", "add", "198.51.100.0/24", "dev", "rtnla", "table", "22338", "proto", "87")
	await("the route", unix.RTM_NEWROUTE, func(m syscall.NetlinkMessage) bool {
		table, proto, ok := Route(m)
		return ok && table == 22338 && proto == 87
	})
	s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("Read after Close: %v, want os.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the Read")
	}
}
