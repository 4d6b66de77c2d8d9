package vipsrc

import (
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/wgbird/wgbird/internal/rtnl"
)

// The Keeper reads route, address and rule changes from one rtnetlink
// socket of its own (rtnl), needing no more of a change than whether to
// sync: netlink's RouteSubscribe and AddrSubscribe took two goroutines
// each, one of them parked on a 64 KiB stack array. Rules are there so
// that a rule of the Keeper's deleted by hand is put back at once, not at
// the next resync.
const eventGroups = rtnl.Routes | rtnl.Addrs | rtnl.Rules

// needsSync reports whether a datagram of notifications calls for a
// sync: any address or rule change, and any route change but the
// Keeper's own additions in its table (a deletion there is someone
// removing one of its routes, or the kernel flushing them with an
// address). What does not parse calls for a sync too.
func needsSync(msgs []syscall.NetlinkMessage, table int) bool {
	if len(msgs) == 0 {
		return true
	}
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWROUTE {
			return true // addresses, route deletions, anything else
		}
		if t, proto, ok := rtnl.Route(m); !ok || t != table || proto != Protocol {
			return true
		}
	}
	return false
}
