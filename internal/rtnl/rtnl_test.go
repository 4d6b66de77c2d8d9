package rtnl

import (
	"encoding/binary"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// attr encodes one attribute.
func attr(typ uint16, v []byte) []byte {
	b := make([]byte, unix.SizeofRtAttr, unix.SizeofRtAttr+len(v)+4)
	binary.NativeEndian.PutUint16(b[0:2], uint16(unix.SizeofRtAttr+len(v)))
	binary.NativeEndian.PutUint16(b[2:4], typ)
	b = append(b, v...)
	for len(b)%unix.RTA_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// message encodes one netlink message of type typ with body.
func message(typ uint16, body []byte) []byte {
	b := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(body))
	binary.NativeEndian.PutUint32(b[0:4], uint32(unix.NLMSG_HDRLEN+len(body)))
	binary.NativeEndian.PutUint16(b[4:6], typ)
	return append(b, body...)
}

func parse(t *testing.T, b []byte) syscall.NetlinkMessage {
	t.Helper()
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("ParseNetlinkMessage: %d messages, %v", len(msgs), err)
	}
	return msgs[0]
}

func TestLink(t *testing.T) {
	ifi := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(ifi[4:8], 7)
	body := append(append(append([]byte{}, ifi...), attr(unix.IFLA_MTU, u32(1420))...), attr(unix.IFLA_IFNAME, []byte("wg0\x00"))...)
	i, name, ok := Link(parse(t, message(unix.RTM_NEWLINK, body)))
	if !ok || i != 7 || name != "wg0" {
		t.Errorf("Link = %d, %q, %v; want 7, wg0", i, name, ok)
	}
	if _, _, ok := Link(parse(t, message(unix.RTM_NEWLINK, append(append([]byte{}, ifi...), 99, 0, 3, 0)))); ok {
		t.Error("an attribute longer than the message parsed")
	}
	if _, _, ok := Link(parse(t, message(unix.RTM_NEWLINK, ifi[:8]))); ok {
		t.Error("a short ifinfomsg parsed")
	}
}

func TestAddr(t *testing.T) {
	ifa := make([]byte, unix.SizeofIfAddrmsg)
	binary.NativeEndian.PutUint32(ifa[4:8], 3)
	if i, ok := Addr(parse(t, message(unix.RTM_NEWADDR, ifa))); !ok || i != 3 {
		t.Errorf("Addr = %d, %v; want 3", i, ok)
	}
	if _, ok := Addr(parse(t, message(unix.RTM_NEWADDR, ifa[:4]))); ok {
		t.Error("a short ifaddrmsg parsed")
	}
}

func TestRoute(t *testing.T) {
	rt := make([]byte, unix.SizeofRtMsg)
	rt[4], rt[5] = unix.RT_TABLE_MAIN, unix.RTPROT_BOOT
	if table, proto, ok := Route(parse(t, message(unix.RTM_NEWROUTE, rt))); !ok || table != unix.RT_TABLE_MAIN || proto != unix.RTPROT_BOOT {
		t.Errorf("Route = %d, %d, %v; want main, boot", table, proto, ok)
	}
	// A table above 255 is in RTA_TABLE, after RTA_DST.
	rt[4], rt[5] = unix.RT_TABLE_UNSPEC, 0x57
	body := append(append(append([]byte{}, rt...), attr(unix.RTA_DST, []byte{10, 0, 0, 0})...), attr(unix.RTA_TABLE, u32(22338))...)
	if table, proto, ok := Route(parse(t, message(unix.RTM_NEWROUTE, body))); !ok || table != 22338 || proto != 0x57 {
		t.Errorf("Route = %d, %d, %v; want 22338, 0x57", table, proto, ok)
	}
}

// Nothing a datagram holds makes the parsers panic or read past it.
func FuzzParsers(f *testing.F) {
	ifi := make([]byte, unix.SizeofIfInfomsg)
	f.Add(message(unix.RTM_NEWLINK, append(ifi, attr(unix.IFLA_IFNAME, []byte("wg0\x00"))...)))
	rt := make([]byte, unix.SizeofRtMsg)
	f.Add(message(unix.RTM_NEWROUTE, append(rt, attr(unix.RTA_TABLE, u32(22338))...)))
	f.Add(message(unix.RTM_NEWADDR, make([]byte, unix.SizeofIfAddrmsg)))
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := syscall.ParseNetlinkMessage(b)
		if err != nil {
			return
		}
		for _, m := range msgs {
			if _, name, ok := Link(m); ok && len(name) > len(m.Data) {
				t.Errorf("name %q longer than the message", name)
			}
			Addr(m)
			Route(m)
		}
	})
}
