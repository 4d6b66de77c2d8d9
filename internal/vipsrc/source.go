package vipsrc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Source asks the kernel which source address a UDP packet from port to
// dst would leave with, as WireGuard's own packets are routed when they
// have no cached source (`ip route get DST ipproto udp sport PORT dport
// P`). It is the end-to-end check of the set-up, in the network namespace
// of the calling thread; an error says that the host has no route to dst.
func Source(dst netip.AddrPort, port int) (netip.Addr, error) {
	addr := dst.Addr().Unmap()
	af := unix.AF_INET
	if addr.Is6() {
		af = unix.AF_INET6
	}
	req := nl.NewNetlinkRequest(unix.RTM_GETROUTE, unix.NLM_F_REQUEST)
	msg := nl.NewRtMsg()
	msg.Family = uint8(af)
	msg.Dst_len = uint8(addr.BitLen())
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.RTA_DST, addr.AsSlice()))
	req.AddData(nl.NewRtAttr(unix.RTA_IP_PROTO, []byte{unix.IPPROTO_UDP}))
	req.AddData(nl.NewRtAttr(unix.RTA_SPORT, be16(uint16(port))))
	req.AddData(nl.NewRtAttr(unix.RTA_DPORT, be16(dst.Port())))
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWROUTE)
	if err != nil {
		if errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.EHOSTUNREACH) {
			return netip.Addr{}, fmt.Errorf("no route to %s", addr)
		}
		return netip.Addr{}, fmt.Errorf("looking up the route to %s: %w", addr, err)
	}
	if len(msgs) == 0 {
		return netip.Addr{}, fmt.Errorf("looking up the route to %s: no answer", addr)
	}
	return parsePrefSrc(msgs[0])
}

func be16(v uint16) []byte {
	b := make([]byte, 2)
	binary.BigEndian.PutUint16(b, v)
	return b
}

// parsePrefSrc reads RTA_PREFSRC from an RTM_NEWROUTE answer.
func parsePrefSrc(m []byte) (netip.Addr, error) {
	if len(m) < unix.SizeofRtMsg {
		return netip.Addr{}, errors.New("short route message")
	}
	attrs, err := nl.ParseRouteAttr(m[unix.SizeofRtMsg:])
	if err != nil {
		return netip.Addr{}, fmt.Errorf("parsing route message: %w", err)
	}
	for _, a := range attrs {
		if a.Attr.Type == unix.RTA_PREFSRC {
			if ip, ok := netip.AddrFromSlice(a.Value); ok {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, errors.New("the route names no source address")
}
