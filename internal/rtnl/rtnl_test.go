package rtnl_test

import (
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

// Nothing a datagram holds makes the parsers panic or read past it.
func FuzzParsers(f *testing.F) {
	f.Add(rtnltest.Message(unix.RTM_NEWLINK, rtnltest.Link(3, "wg0")))
	f.Add(rtnltest.Message(unix.RTM_NEWROUTE, rtnltest.Route(22338, 0x57)))
	f.Add(rtnltest.Message(unix.RTM_NEWADDR, rtnltest.Addr(3)))
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
		}
	})
}
