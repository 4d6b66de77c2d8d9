//go:build integration

package rtnl

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
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

// A Conn reads links and addresses as `ip` shows them: a link found and
// missing (a long name too), the addresses of one link only and in the
// kernel's order, a dump of many datagrams, and an error once closed.
func TestConn(t *testing.T) {
	wgtest.Require(t, "ip")
	ns := wgtest.NewNS(t, "wgc-rtnlc")
	ns.Exec(t, "ip", "link", "add", "rtnlc", "type", "veth", "peer", "name", "rtnld")
	ns.Exec(t, "ip", "link", "set", "rtnlc", "up")
	ns.Exec(t, "ip", "addr", "add", "192.168.20.1/24", "dev", "rtnlc")
	ns.Exec(t, "ip", "addr", "add", "fd00:20::1/64", "dev", "rtnlc", "nodad")
	ns.Exec(t, "ip", "addr", "add", "10.9.9.1", "peer", "10.9.9.2/32", "dev", "rtnlc")
	ns.Exec(t, "ip", "addr", "add", "198.51.100.9/24", "dev", "rtnld") // the other link's
	var c *Conn
	if err := ns.Do(func() (err error) { c, err = Dial(2 * time.Second); return err }); err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	var links []struct {
		Index     int      `json:"ifindex"`
		Flags     []string `json:"flags"`
		OperState string   `json:"operstate"`
		Addrs     []struct {
			Local     string `json:"local"`
			Prefixlen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(ns.Exec(t, "ip", "-j", "addr", "show", "dev", "rtnlc")), &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -j addr show: %d links, %v", len(links), err)
	}
	want := links[0]
	l, found, err := c.LinkByName("rtnlc")
	if err != nil || !found || l.Index != want.Index {
		t.Fatalf("LinkByName(rtnlc) = %+v, %v, %v; want index %d", l, found, err, want.Index)
	}
	if up := l.Flags&unix.IFF_UP != 0; up != slices.Contains(want.Flags, "UP") {
		t.Errorf("LinkByName(rtnlc): flags %#x, ip shows %v", l.Flags, want.Flags)
	}
	// A veth whose peer is down has no carrier: lower-layer-down (3).
	if l.OperState != 3 || want.OperState != "LOWERLAYERDOWN" || l.Flags&unix.IFF_RUNNING != 0 {
		t.Errorf("LinkByName(rtnlc): operstate %d, flags %#x; ip shows %s, want lower-layer-down without IFF_RUNNING", l.OperState, l.Flags, want.OperState)
	}
	var wantAddrs []netip.Prefix
	for _, a := range want.Addrs {
		wantAddrs = append(wantAddrs, netip.PrefixFrom(netip.MustParseAddr(a.Local), a.Prefixlen))
	}
	got, err := c.Addrs(l.Index)
	if err != nil {
		t.Fatal(err)
	}
	// ip shows a point-to-point address with the peer's length; a Conn
	// reads the local address alone, full length (as vishvananda does).
	for i, p := range wantAddrs {
		if p.Addr() == netip.MustParseAddr("10.9.9.1") {
			wantAddrs[i] = netip.MustParsePrefix("10.9.9.1/32")
		}
	}
	if diff := cmp.Diff(wantAddrs, got, cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
		t.Errorf("Addrs(rtnlc) (-ip +Conn):\n%s", diff)
	}

	for _, name := range []string{"rtnlnothere", "a-name-longer-than-fifteen"} {
		if l, found, err := c.LinkByName(name); err != nil || found {
			t.Errorf("LinkByName(%s) = %+v, %v, %v; want not found, no error", name, l, found, err)
		}
	}

	// 600 addresses take several datagrams to dump.
	var batch strings.Builder
	for i := range 600 {
		fmt.Fprintf(&batch, "addr add 10.%d.%d.1/32 dev rtnld\n", 100+i/256, i%256)
	}
	file := filepath.Join(t.TempDir(), "batch")
	if err := os.WriteFile(file, []byte(batch.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ns.Exec(t, "ip", "-batch", file)
	d, found, err := c.LinkByName("rtnld")
	if err != nil || !found {
		t.Fatalf("LinkByName(rtnld) = %v, %v", found, err)
	}
	many, err := c.Addrs(d.Index)
	if err != nil || len(many) < 601 { // and its IPv6 link-local, once up
		t.Errorf("Addrs(rtnld) = %d addresses, %v; want 601", len(many), err)
	}
	if again, err := c.Addrs(l.Index); err != nil || len(again) != len(got) {
		t.Errorf("Addrs(rtnlc) after a long dump = %v, %v; want %v", again, err, got)
	}

	// The source of a packet to a neighbour, as `ip route get` says; no
	// route to anything else (the namespace has no default route).
	out := ns.Exec(t, "ip", "route", "get", "192.168.20.7", "ipproto", "udp", "sport", "51820", "dport", "40000")
	if !strings.Contains(out, "src 192.168.20.1 ") {
		t.Fatalf("ip route get: %q, want src 192.168.20.1", out)
	}
	if src, err := c.RouteSource(netip.MustParseAddr("192.168.20.7"), unix.IPPROTO_UDP, 51820, 40000); err != nil || src != netip.MustParseAddr("192.168.20.1") {
		t.Errorf("RouteSource(192.168.20.7) = %v, %v; want 192.168.20.1", src, err)
	}
	if src, err := c.RouteSource(netip.MustParseAddr("fd00:20::7"), unix.IPPROTO_UDP, 51820, 40000); err != nil || src != netip.MustParseAddr("fd00:20::1") {
		t.Errorf("RouteSource(fd00:20::7) = %v, %v; want fd00:20::1", src, err)
	}
	if src, err := c.RouteSource(netip.MustParseAddr("203.0.113.1"), unix.IPPROTO_UDP, 51820, 40000); !errors.Is(err, unix.ENETUNREACH) {
		t.Errorf("RouteSource(203.0.113.1) = %v, %v; want ENETUNREACH", src, err)
	}

	c.Close()
	if _, _, err := c.LinkByName("rtnlc"); err == nil {
		t.Error("LinkByName after Close: no error")
	}
}
