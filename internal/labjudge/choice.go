package labjudge

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// routeHandle opens route netlink in the router's network namespace ns.
func routeHandle(ns string) (*netlink.Handle, error) {
	return handle(ns, unix.NETLINK_ROUTE, "netlink in router namespace")
}

// handle opens netlink of protocol proto (what, in errors) in the
// router's network namespace ns, with a deadline on every request.
func handle(ns string, proto int, what string) (*netlink.Handle, error) {
	target, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("opening router namespace: %w", err)
	}
	defer target.Close()
	h, err := netlink.NewHandleAt(target, proto)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", what, err)
	}
	if err := h.SetSocketTimeout(netlinkTimeout); err != nil {
		h.Close()
		return nil, fmt.Errorf("setting netlink timeout: %w", err)
	}
	return h, nil
}

// RoutedVia returns the gateway the kernel of the router's network
// namespace ns routes a packet from src, arriving on iif, to dst through;
// the zero Addr when it has no route.
func RoutedVia(ns string, dst netip.Addr, iif string, src netip.Addr) (netip.Addr, error) {
	h, err := routeHandle(ns)
	if err != nil {
		return netip.Addr{}, err
	}
	defer h.Close()
	return routedVia(h, dst, iif, src)
}

func routedVia(h *netlink.Handle, dst netip.Addr, iif string, src netip.Addr) (netip.Addr, error) {
	rs, err := h.RouteGetWithOptions(net.IP(dst.AsSlice()), &netlink.RouteGetOptions{Iif: iif, SrcAddr: src.AsSlice()})
	if errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.EHOSTUNREACH) {
		return netip.Addr{}, nil
	}
	if err != nil {
		return netip.Addr{}, fmt.Errorf("asking the router's route from %s to %s: %w", src, dst, err)
	}
	for _, r := range rs {
		if gw, ok := netip.AddrFromSlice(r.Gw); ok {
			return gw.Unmap(), nil
		}
	}
	return netip.Addr{}, nil
}

// Choices installs a multipath route to prefix via gateways on dev in the
// main table of the router's network namespace ns, asks which gateway a
// packet from each of srcs, arriving on iif, to dst goes through (the
// router's ECMP hash: see RoutedVia), and removes the route.
func Choices(ns string, prefix netip.Prefix, dev string, gateways []netip.Addr, dst netip.Addr, iif string, srcs []netip.Addr) ([]netip.Addr, error) {
	h, err := routeHandle(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	link, err := h.LinkByName(dev)
	if err != nil {
		return nil, fmt.Errorf("finding the router's %s: %w", dev, err)
	}
	route := &netlink.Route{Dst: IPNet(prefix), Table: unix.RT_TABLE_MAIN}
	for _, gw := range gateways {
		route.MultiPath = append(route.MultiPath, &netlink.NexthopInfo{LinkIndex: link.Attrs().Index, Gw: gw.AsSlice()})
	}
	if err := h.RouteReplace(route); err != nil {
		return nil, fmt.Errorf("installing the placement route: %w", err)
	}
	defer h.RouteDel(route)
	out := make([]netip.Addr, len(srcs))
	for i, src := range srcs {
		gw, err := routedVia(h, dst, iif, src)
		if err != nil {
			return nil, err
		}
		out[i] = gw
	}
	return out, nil
}
