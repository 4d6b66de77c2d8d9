package rtnl_test

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/wgbird/wgbird/internal/rtnl"
	"github.com/wgbird/wgbird/internal/rtnl/rtnltest"
)

func parse(t *testing.T, b []byte) syscall.NetlinkMessage {
	t.Helper()
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("ParseNetlinkMessage: %d messages, %v", len(msgs), err)
	}
	return msgs[0]
}

func TestLink(t *testing.T) {
	body := append(rtnltest.Link(7, "wg0"), rtnltest.Attr(unix.IFLA_MTU, rtnltest.U32(1420))...)
	i, name, ok := rtnl.Link(parse(t, rtnltest.Message(unix.RTM_NEWLINK, body)))
	if !ok || i != 7 || name != "wg0" {
		t.Errorf("Link = %d, %q, %v; want 7, wg0", i, name, ok)
	}
	ifi := make([]byte, unix.SizeofIfInfomsg)
	if _, _, ok := rtnl.Link(parse(t, rtnltest.Message(unix.RTM_NEWLINK, append(ifi, 99, 0, 3, 0)))); ok {
		t.Error("an attribute longer than the message parsed")
	}
	if _, _, ok := rtnl.Link(parse(t, rtnltest.Message(unix.RTM_NEWLINK, ifi[:8]))); ok {
		t.Error("a short ifinfomsg parsed")
	}
}

func TestAddr(t *testing.T) {
	if i, ok := rtnl.Addr(parse(t, rtnltest.Message(unix.RTM_NEWADDR, rtnltest.Addr(3)))); !ok || i != 3 {
		t.Errorf("Addr = %d, %v; want 3", i, ok)
	}
	if _, ok := rtnl.Addr(parse(t, rtnltest.Message(unix.RTM_NEWADDR, rtnltest.Addr(3)[:4]))); ok {
		t.Error("a short ifaddrmsg parsed")
	}
}

func TestRoute(t *testing.T) {
	m := parse(t, rtnltest.Message(unix.RTM_NEWROUTE, rtnltest.Route(unix.RT_TABLE_MAIN, unix.RTPROT_BOOT)))
	if table, proto, ok := rtnl.Route(m); !ok || table != unix.RT_TABLE_MAIN || proto != unix.RTPROT_BOOT {
		t.Errorf("Route = %d, %d, %v; want main, boot", table, proto, ok)
	}
	// A table above 255 is in RTA_TABLE, after RTA_DST.
	m = parse(t, rtnltest.Message(unix.RTM_NEWROUTE, rtnltest.Route(22338, 0x57)))
	if table, proto, ok := rtnl.Route(m); !ok || table != 22338 || proto != 0x57 {
		t.Errorf("Route = %d, %d, %v; want 22338, 0x57", table, proto, ok)
	}
}

// IFLA_OPERSTATE's values (RFC 2863; linux/if.h), which x/sys/unix lacks.
const (
	operUnknown        = 0
	operLowerLayerDown = 3
	operUp             = 6
)

func TestParseLinkInfo(t *testing.T) {
	m := parse(t, rtnltest.Message(unix.RTM_NEWLINK, rtnltest.LinkState(7, "wg0", unix.IFF_UP|unix.IFF_RUNNING, operUnknown)))
	want := rtnl.LinkInfo{Index: 7, Flags: unix.IFF_UP | unix.IFF_RUNNING, OperState: operUnknown}
	if got, ok := rtnl.ParseLinkInfo(m); !ok || got != want {
		t.Errorf("ParseLinkInfo = %+v, %v; want %+v", got, ok, want)
	}
	m = parse(t, rtnltest.Message(unix.RTM_NEWLINK, rtnltest.LinkState(8, "eth0", unix.IFF_UP, operLowerLayerDown)))
	want = rtnl.LinkInfo{Index: 8, Flags: unix.IFF_UP, OperState: operLowerLayerDown}
	if got, ok := rtnl.ParseLinkInfo(m); !ok || got != want {
		t.Errorf("ParseLinkInfo = %+v, %v; want %+v", got, ok, want)
	}
	if _, ok := rtnl.ParseLinkInfo(parse(t, rtnltest.Message(unix.RTM_NEWLINK, make([]byte, 12)))); ok {
		t.Error("a short ifinfomsg parsed")
	}
}

func TestParseAddr(t *testing.T) {
	v4 := func(a, b, c, d byte) []byte { return []byte{a, b, c, d} }
	vip6 := netip.MustParseAddr("fd00:20::1").AsSlice()
	mapped := netip.AddrFrom16(netip.MustParseAddr("::ffff:192.0.2.7").As16()).AsSlice()
	for _, c := range []struct {
		name string
		body []byte
		want string // "": no valid prefix
	}{
		{"IPv4: IFA_LOCAL and IFA_ADDRESS the same", rtnltest.Address(3, 24, v4(192, 168, 20, 1), v4(192, 168, 20, 1)), "192.168.20.1/24"},
		{"IPv4 point-to-point: the local address, full length", rtnltest.Address(3, 32, v4(10, 9, 9, 2), v4(10, 9, 9, 1)), "10.9.9.1/32"},
		{"IPv6: IFA_ADDRESS alone", rtnltest.Address(3, 64, vip6, nil), "fd00:20::1/64"},
		{"IPv6 with IFA_LOCAL: the local address, full length", rtnltest.Address(3, 64, v4(10, 0, 0, 1), vip6), "fd00:20::1/128"},
		{"an IPv4-mapped address, unmapped", rtnltest.Address(3, 24, mapped, nil), "192.0.2.7/24"},
		{"a length beyond the address's", rtnltest.Address(3, 40, v4(192, 0, 2, 1), nil), ""},
		{"neither attribute", rtnltest.Address(3, 24, nil, nil), ""},
		{"an address of 5 bytes", rtnltest.Address(3, 24, []byte{1, 2, 3, 4, 5}, nil), ""},
	} {
		i, p, ok := rtnl.ParseAddr(parse(t, rtnltest.Message(unix.RTM_NEWADDR, c.body)))
		got := ""
		if p.IsValid() {
			got = p.String()
		}
		if !ok || i != 3 || got != c.want {
			t.Errorf("%s: ParseAddr = %d, %q, %v; want 3, %q", c.name, i, got, ok, c.want)
		}
	}
	if _, _, ok := rtnl.ParseAddr(parse(t, rtnltest.Message(unix.RTM_NEWADDR, rtnltest.Addr(3)[:4]))); ok {
		t.Error("a short ifaddrmsg parsed")
	}
}

func TestParsePrefSrc(t *testing.T) {
	body := append(rtnltest.Route(unix.RT_TABLE_MAIN, unix.RTPROT_BOOT), rtnltest.Attr(unix.RTA_PREFSRC, []byte{192, 168, 20, 1})...)
	src, ok := rtnl.ParsePrefSrc(parse(t, rtnltest.Message(unix.RTM_NEWROUTE, body)))
	if want := netip.MustParseAddr("192.168.20.1"); !ok || src != want {
		t.Errorf("ParsePrefSrc = %v, %v; want %v", src, ok, want)
	}
	if src, ok := rtnl.ParsePrefSrc(parse(t, rtnltest.Message(unix.RTM_NEWROUTE, rtnltest.Route(unix.RT_TABLE_MAIN, 0)))); !ok || src.IsValid() {
		t.Errorf("ParsePrefSrc without RTA_PREFSRC = %v, %v; want no address", src, ok)
	}
	if _, ok := rtnl.ParsePrefSrc(parse(t, rtnltest.Message(unix.RTM_NEWROUTE, make([]byte, 3)))); ok {
		t.Error("a short rtmsg parsed")
	}
}

// Nothing a datagram holds makes the parsers panic or read past it.
func FuzzParsers(f *testing.F) {
	f.Add(rtnltest.Message(unix.RTM_NEWLINK, rtnltest.Link(3, "wg0")))
	f.Add(rtnltest.Message(unix.RTM_NEWROUTE, rtnltest.Route(22338, 0x57)))
	f.Add(rtnltest.Message(unix.RTM_NEWADDR, rtnltest.Addr(3)))
	f.Add(rtnltest.Message(unix.RTM_NEWLINK, rtnltest.LinkState(3, "wg0", unix.IFF_UP, operUp)))
	f.Add(rtnltest.Message(unix.RTM_NEWADDR, rtnltest.Address(3, 24, []byte{10, 9, 9, 2}, []byte{10, 9, 9, 1})))
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := syscall.ParseNetlinkMessage(b)
		if err != nil {
			return
		}
		for _, m := range msgs {
			if _, name, ok := rtnl.Link(m); ok && len(name) > len(m.Data) {
				t.Errorf("name %q longer than the message", name)
			}
			rtnl.Addr(m)
			rtnl.Route(m)
			rtnl.ParseLinkInfo(m)
			if src, ok := rtnl.ParsePrefSrc(m); ok && src.Is4In6() {
				t.Errorf("source %s not unmapped", src)
			}
			if _, p, ok := rtnl.ParseAddr(m); ok && p.IsValid() && p.Bits() > p.Addr().BitLen() {
				t.Errorf("prefix %s longer than its address", p)
			}
		}
	})
}

// A Kept keeps its Conn through successes and the errors named, and
// dials another after any other failure and after Close. (Opening a
// NETLINK_ROUTE socket needs no privilege.)
func TestKept(t *testing.T) {
	var k rtnl.Kept
	defer k.Close()
	errKept, errOther := errors.New("kept through"), errors.New("a failure")
	use := func(ret error) (c *rtnl.Conn) {
		t.Helper()
		err := k.Use(func(kc *rtnl.Conn) error {
			c = kc
			if _, _, err := kc.LinkByName("lo"); err != nil {
				t.Errorf("LinkByName(lo) on the kept Conn: %v", err)
			}
			return ret
		}, errKept)
		if err != ret {
			t.Errorf("Use = %v, want f's %v", err, ret)
		}
		return c
	}
	first := use(nil)
	if c := use(fmt.Errorf("wrapped: %w", errKept)); c != first {
		t.Error("a success dialed another Conn")
	}
	if c := use(nil); c != first {
		t.Error("an error Use keeps through dialed another Conn")
	}
	use(errOther)
	second := use(nil)
	if second == first {
		t.Error("the Conn was kept after a failure")
	}
	k.Close()
	if c := use(nil); c == second {
		t.Error("the Conn was kept after Close")
	}
}
