package link

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/wgbird/wgbird/internal/health"
	"github.com/wgbird/wgbird/internal/rtnl"
)

// CheckName is the Name of the checks Evaluate returns.
const CheckName = "link"

// State is what netlink reports about one interface.
type State struct {
	// Exists is false when there is no link of that name; the other
	// fields are then zero.
	Exists bool
	Index  int
	// Up is IFF_UP: administratively up.
	Up bool
	// Running is IFF_RUNNING: the link has a carrier.
	Running bool
	// OperState is the RFC 2863 operational state as netlink names it:
	// "up", "down", "lower-layer-down", "unknown" (always for a TUN
	// device), ...
	OperState string
	// Addrs are the addresses on the link with their prefix lengths, e.g.
	// 192.168.20.1/24, both families, in the kernel's order.
	Addrs []netip.Prefix
}

// dumpRetries bounds the retries of a netlink dump the kernel reports as
// interrupted by a concurrent change.
const dumpRetries = 3

// Reader reads links through one rtnetlink socket kept open (rtnl.Conn),
// in the network namespace of the thread of its first Read: a socket for
// each request costs six more system calls, twice a check, and
// vishvananda/netlink's receive grows the calling goroutine's stack (the
// service loop's) to 128 KiB. It is safe for concurrent use. A failed
// read (other than a missing link) closes the socket; the next read opens
// another. A missing link is State{Exists: false} with a nil error.
type Reader struct {
	k rtnl.Kept
}

// Read reads the link name and its addresses through r's socket.
func (r *Reader) Read(name string) (State, error) {
	var s State
	err := r.k.Use(func(c *rtnl.Conn) (err error) {
		s, err = readConn(c, name)
		return err
	})
	if err != nil {
		return State{}, fmt.Errorf("reading link %s: %w", name, err)
	}
	return s, nil
}

// Close closes the socket.
func (r *Reader) Close() { r.k.Close() }

// readConn reads the link name and its addresses on c; Read names the
// link in its errors.
func readConn(c *rtnl.Conn, name string) (State, error) {
	l, found, err := c.LinkByName(name)
	switch {
	case err != nil:
		return State{}, err
	case !found:
		return State{}, nil
	}
	s := State{
		Exists:    true,
		Index:     l.Index,
		Up:        l.Flags&unix.IFF_UP != 0,
		Running:   l.Flags&unix.IFF_RUNNING != 0,
		OperState: netlink.LinkOperState(l.OperState).String(),
	}
	for i := 0; ; i++ {
		s.Addrs, err = c.Addrs(l.Index)
		if errors.Is(err, rtnl.ErrDumpInterrupted) && i < dumpRetries {
			continue
		}
		break
	}
	if err != nil {
		return State{}, fmt.Errorf("listing its addresses: %w", err)
	}
	return s, nil
}

// Evaluate judges the result of one Reader.Read of the link name against
// the VIPs that must be on it. It does no I/O.
//
// A missing link, a link that is administratively down or has no carrier
// (not IFF_RUNNING, or operstate down; a TUN's operstate is always
// "unknown", so the flags decide), and a missing VIP are hard failures:
// the service's addresses cannot be reached through this server. A VIP
// present with another prefix length counts as missing. A read error is a
// soft failure.
func Evaluate(name string, vips []netip.Prefix, s State, err error) health.Check {
	c := health.Check{Name: CheckName}
	switch {
	case err != nil:
		c.Detail = err.Error()
		return c
	case !s.Exists:
		c.Hard, c.Detail = true, fmt.Sprintf("link %s not found", name)
		return c
	case !s.Up:
		c.Hard, c.Detail = true, fmt.Sprintf("link %s is down", name)
		return c
	case !s.Running || operDown(s.OperState):
		c.Hard, c.Detail = true, fmt.Sprintf("link %s has no carrier", name)
		return c
	}

	var missing []string
	for _, vip := range vips {
		if m := vipMissing(name, vip, s.Addrs); m != "" {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		c.Hard, c.Detail = true, strings.Join(missing, "; ")
		return c
	}

	c.OK = true
	c.Detail = name + " up"
	if len(vips) > 0 {
		vs := make([]string, len(vips))
		for i, v := range vips {
			vs[i] = v.String()
		}
		c.Detail += ", VIPs " + strings.Join(vs, ", ") + " present"
	}
	return c
}

func operDown(state string) bool {
	switch state {
	case "down", "lower-layer-down", "not-present":
		return true
	}
	return false
}

// vipMissing returns why vip is not on the link, or "" if it is.
func vipMissing(name string, vip netip.Prefix, addrs []netip.Prefix) string {
	want := netip.PrefixFrom(vip.Addr().Unmap(), vip.Bits())
	var other []string
	for _, a := range addrs {
		if a == want {
			return ""
		}
		if a.Addr() == want.Addr() {
			other = append(other, a.String())
		}
	}
	msg := fmt.Sprintf("VIP %s missing on %s", vip, name)
	if len(other) > 0 {
		msg += fmt.Sprintf(" (present as %s)", strings.Join(other, ", "))
	}
	return msg
}
