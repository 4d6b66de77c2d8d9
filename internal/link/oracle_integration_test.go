//go:build integration

package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// The tests' reference: a link read through vishvananda/netlink, which
// the daemon used before rtnl.Conn, compared with a Reader's reads at
// every step of the lifecycle.

// readNetlink reads the link name in the current network namespace (of the
// calling OS thread), through netlink sockets of its own. A missing link
// is State{Exists: false} with a nil error.
func readNetlink(name string) (State, error) {
	return read(&netlink.Handle{}, name)
}

func read(h *netlink.Handle, name string) (State, error) {
	l, err := linkByName(h, name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return State{}, nil
		}
		return State{}, fmt.Errorf("reading link %s: %w", name, err)
	}
	a := l.Attrs()
	s := State{
		Exists:    true,
		Index:     a.Index,
		Up:        a.Flags&net.FlagUp != 0,
		Running:   a.Flags&net.FlagRunning != 0,
		OperState: a.OperState.String(),
	}
	addrs, err := addrList(h, l)
	if err != nil {
		return State{}, fmt.Errorf("listing addresses of link %s: %w", name, err)
	}
	for _, ad := range addrs {
		if ad.IPNet == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(ad.IP)
		if !ok {
			continue
		}
		ones, _ := ad.Mask.Size()
		s.Addrs = append(s.Addrs, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return s, nil
}

func linkByName(h *netlink.Handle, name string) (netlink.Link, error) {
	for i := 0; ; i++ {
		l, err := h.LinkByName(name)
		if errors.Is(err, netlink.ErrDumpInterrupted) && i < dumpRetries {
			continue
		}
		return l, err
	}
}

func addrList(h *netlink.Handle, l netlink.Link) ([]netlink.Addr, error) {
	for i := 0; ; i++ {
		addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
		if errors.Is(err, netlink.ErrDumpInterrupted) && i < dumpRetries {
			continue
		}
		return addrs, err
	}
}
