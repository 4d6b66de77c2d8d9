package vipsrc

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/wgbird/wgbird/internal/rtnl"
)

// ErrNoRoute is Source's error when the host has no route to the address.
var ErrNoRoute = errors.New("no route")

// Source asks the kernel, on c, which source address a UDP packet from
// port to dst would leave with, as WireGuard's own packets are routed
// when they have no cached source (`ip route get DST ipproto udp sport
// PORT dport P`). It is the end-to-end check of the set-up; ErrNoRoute
// says that the host has no route to dst.
func Source(c *rtnl.Conn, dst netip.AddrPort, port int) (netip.Addr, error) {
	addr := dst.Addr().Unmap()
	src, err := c.RouteSource(addr, unix.IPPROTO_UDP, uint16(port), dst.Port())
	switch {
	case errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.EHOSTUNREACH):
		return netip.Addr{}, fmt.Errorf("%w to %s", ErrNoRoute, addr)
	case err != nil:
		return netip.Addr{}, fmt.Errorf("looking up the route to %s: %w", addr, err)
	}
	return src, nil
}
