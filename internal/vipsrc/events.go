package vipsrc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// events is one netlink socket subscribed to IPv4 and IPv6 route and
// address changes, read through Go's netpoller into a buffer on the heap.
// The Keeper needs no more of an event than whether to sync: it replaces
// netlink's RouteSubscribe and AddrSubscribe, which take two goroutines
// each, one of them parked in a receive with a 64 KiB array on its stack
// (half a megabyte of resident memory for the pair).
type events struct {
	f   *os.File
	buf []byte
}

// eventsBuffer holds one datagram of notifications: the kernel sends one
// route or address message per datagram (under a kilobyte); a longer one
// is cut short, which only costs a sync.
const eventsBuffer = 8 << 10

const eventGroups = unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR

// openEvents subscribes in the network namespace of the calling thread.
func openEvents() (*events, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("opening a netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: eventGroups}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("subscribing to route and address changes: %w", err)
	}
	return &events{f: os.NewFile(uintptr(fd), "netlink route events"), buf: make([]byte, eventsBuffer)}, nil
}

// errLost says the socket's queue overflowed: events were lost, and the
// Keeper syncs to catch up.
var errLost = errors.New("netlink events lost")

// next waits for the next datagram and reports whether it calls for a
// sync (see needsSync) for the keeper's table. It returns errLost after
// an overflow (the socket stays usable), os.ErrClosed once closed.
func (e *events) next(table int) (bool, error) {
	n, err := e.f.Read(e.buf)
	if errors.Is(err, syscall.ENOBUFS) {
		return true, errLost
	}
	if err != nil {
		return false, err
	}
	return needsSync(e.buf[:n], table), nil
}

func (e *events) Close() error { return e.f.Close() }

// needsSync reports whether a datagram of rtnetlink notifications calls
// for a sync: any address change, and any route change but the Keeper's
// own additions in its table (a deletion there is someone removing one
// of its routes, or the kernel flushing them with an address). What it
// cannot parse calls for a sync too. Only the kernel (or a process with
// CAP_NET_ADMIN) sends to these groups; nothing here trusts the lengths.
func needsSync(b []byte, table int) bool {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil || len(msgs) == 0 {
		return true
	}
	for _, m := range msgs {
		switch m.Header.Type {
		case unix.RTM_NEWROUTE:
			t, proto, ok := routeTable(m.Data)
			if !ok || t != table || proto != Protocol {
				return true
			}
		default:
			// Addresses, route deletions, anything else.
			return true
		}
	}
	return false
}

// routeTable returns a route message's table (RTA_TABLE, which holds
// tables above 255, else the header's) and protocol.
func routeTable(b []byte) (table, proto int, ok bool) {
	const rtmsgLen = 12 // struct rtmsg
	if len(b) < rtmsgLen {
		return 0, 0, false
	}
	table, proto = int(b[4]), int(b[5])
	for a := b[rtmsgLen:]; len(a) >= unix.SizeofRtAttr; {
		l := int(binary.NativeEndian.Uint16(a[0:2]))
		typ := binary.NativeEndian.Uint16(a[2:4])
		if l < unix.SizeofRtAttr || l > len(a) {
			return 0, 0, false
		}
		if typ == unix.RTA_TABLE && l >= unix.SizeofRtAttr+4 {
			table = int(binary.NativeEndian.Uint32(a[4:8]))
		}
		next := (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
		if next >= len(a) {
			break
		}
		a = a[next:]
	}
	return table, proto, true
}
