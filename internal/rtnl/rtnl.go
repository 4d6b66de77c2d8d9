package rtnl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Multicast groups to Open.
const (
	Links  = unix.RTMGRP_LINK
	Addrs  = unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR
	Routes = unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE
	// Rules are policy routing rules, both families (IPv6's group has no
	// RTMGRP_ constant: group n is bit n-1).
	Rules = unix.RTMGRP_IPV4_RULE | 1<<(unix.RTNLGRP_IPV6_RULE-1)
)

// bufSize holds one datagram of notifications: the kernel sends one
// message per datagram, a link's the longest (a few kilobytes with its
// statistics). A longer one is cut short and fails to parse, which Read
// reports as ErrLost. vishvananda/netlink's subscriptions receive into a
// 64 KiB array on their goroutine's stack, which keeps a 128 KiB stack
// resident for each of them; this buffer is on the heap, and touched only
// as far as the kernel writes.
const bufSize = 16 << 10

// ErrLost says notifications were lost: the socket's queue overflowed
// (ENOBUFS), or a datagram did not parse. The socket stays usable; the
// reader re-reads whatever it watches.
var ErrLost = errors.New("rtnetlink notifications lost")

// Socket is a netlink socket subscribed to some of the groups above.
type Socket struct {
	f      *os.File
	raw    syscall.RawConn
	buf    []byte
	closed atomic.Bool
}

// Open subscribes to groups in the network namespace of the calling
// thread.
func Open(groups uint32) (*Socket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("opening a netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("subscribing to rtnetlink groups %#x: %w", groups, err)
	}
	f := os.NewFile(uintptr(fd), "rtnetlink")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Socket{f: f, raw: raw, buf: make([]byte, bufSize)}, nil
}

// Read waits for the next datagram from the kernel and returns its
// messages, valid until the next Read. Datagrams from anyone but the
// kernel are dropped. It returns ErrLost as described there, and an error
// matching os.ErrClosed once the socket is closed (Close unblocks it).
// One goroutine reads at a time.
func (s *Socket) Read() ([]syscall.NetlinkMessage, error) {
	for {
		var (
			n    int
			from unix.Sockaddr
			rerr error
		)
		err := s.raw.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), s.buf, 0)
			return rerr != unix.EAGAIN
		})
		switch {
		case err != nil && s.closed.Load():
			return nil, os.ErrClosed // RawConn's own error says "use of closed file"
		case err != nil:
			return nil, err
		case errors.Is(rerr, unix.ENOBUFS):
			return nil, ErrLost
		case rerr != nil:
			return nil, fmt.Errorf("reading rtnetlink notifications: %w", rerr)
		}
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue // not the kernel's
		}
		msgs, err := syscall.ParseNetlinkMessage(s.buf[:n])
		if err != nil {
			return nil, ErrLost
		}
		return msgs, nil
	}
}

// Close closes the socket, ending a Read in progress.
func (s *Socket) Close() error {
	s.closed.Store(true)
	return s.f.Close()
}

// Link returns a link message's (RTM_NEWLINK, RTM_DELLINK) interface
// index and name (IFLA_IFNAME; "" without one).
func Link(m syscall.NetlinkMessage) (index int, name string, ok bool) {
	if len(m.Data) < unix.SizeofIfInfomsg {
		return 0, "", false
	}
	index = int(int32(binary.NativeEndian.Uint32(m.Data[4:8])))
	ok = attrs(m.Data[unix.SizeofIfInfomsg:], func(typ uint16, v []byte) {
		if typ == unix.IFLA_IFNAME {
			name = string(trimNUL(v))
		}
	})
	return index, name, ok
}

// Addr returns an address message's (RTM_NEWADDR, RTM_DELADDR) interface
// index.
func Addr(m syscall.NetlinkMessage) (index int, ok bool) {
	if len(m.Data) < unix.SizeofIfAddrmsg {
		return 0, false
	}
	return int(binary.NativeEndian.Uint32(m.Data[4:8])), true
}

// Route returns a route message's (RTM_NEWROUTE, RTM_DELROUTE) table
// (RTA_TABLE, which holds tables above 255, else the header's) and
// protocol.
func Route(m syscall.NetlinkMessage) (table, proto int, ok bool) {
	if len(m.Data) < unix.SizeofRtMsg {
		return 0, 0, false
	}
	table, proto = int(m.Data[4]), int(m.Data[5])
	ok = attrs(m.Data[unix.SizeofRtMsg:], func(typ uint16, v []byte) {
		if typ == unix.RTA_TABLE && len(v) >= 4 {
			table = int(binary.NativeEndian.Uint32(v[:4]))
		}
	})
	return table, proto, ok
}

// attrs calls f with each attribute of b (type without its flag bits) and
// reports whether b was well formed.
func attrs(b []byte, f func(typ uint16, v []byte)) bool {
	for len(b) > 0 {
		if len(b) < unix.SizeofRtAttr {
			return false
		}
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		if l < unix.SizeofRtAttr || l > len(b) {
			return false
		}
		f(binary.NativeEndian.Uint16(b[2:4])&^(unix.NLA_F_NESTED|unix.NLA_F_NET_BYTEORDER), b[unix.SizeofRtAttr:l])
		next := (l + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1)
		if next >= len(b) {
			return true
		}
		b = b[next:]
	}
	return true
}

func trimNUL(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}
