package rtnl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// requestBufSize holds one datagram of answers: the kernel sizes a
// dump's datagrams by the reader's buffer (at least a page's worth, at
// most 32 KiB), and a link's message is a few kilobytes. A longer
// datagram is an error, not a short read.
const requestBufSize = 8 << 10

// ErrDumpInterrupted says the kernel's dump was interrupted by a change
// while it ran (NLM_F_DUMP_INTR): what it returned may be inconsistent,
// and the request should be sent again.
var ErrDumpInterrupted = errors.New("rtnetlink dump interrupted by a concurrent change")

// Conn sends rtnetlink requests and reads their answers on one socket,
// kept open from one request to the next, into a buffer on the heap.
// vishvananda/netlink's requests receive into a 64 KiB array on the
// caller's stack, which grows the stack of a long-lived goroutine (the
// service loop, which reads its link every pass) to 128 KiB; and their
// timeouts are Go timers, each a wake-up of its own. A Conn's socket is
// blocking with the kernel's own send and receive timeouts, and the
// kernel answers a request before the send returns.
//
// It is safe for concurrent use; requests take turns.
type Conn struct {
	mu  sync.Mutex
	fd  int
	seq uint32
	buf []byte
}

// Dial opens a Conn in the network namespace of the calling thread,
// whose sends and receives give up after timeout.
func Dial(timeout time.Duration) (*Conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("opening a netlink socket: %w", err)
	}
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	for _, opt := range []int{unix.SO_RCVTIMEO, unix.SO_SNDTIMEO} {
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, opt, &tv); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("setting a netlink socket's timeout: %w", err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("binding a netlink socket: %w", err)
	}
	return &Conn{fd: fd, buf: make([]byte, requestBufSize)}, nil
}

// Close closes the socket.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return nil
	}
	err := unix.Close(c.fd)
	c.fd = -1
	return err
}

// LinkInfo is what LinkByName reads of a link.
type LinkInfo struct {
	Index int
	// Flags are the interface flags (unix.IFF_UP, unix.IFF_RUNNING, ...).
	Flags uint32
	// OperState is IFLA_OPERSTATE, RFC 2863's operational state (6 up, 2
	// down, ...; linux/if.h); 0, unknown, without one.
	OperState uint8
}

// LinkByName reads the link called name. A missing link is found false
// with a nil error.
func (c *Conn) LinkByName(name string) (info LinkInfo, found bool, err error) {
	body := make([]byte, unix.SizeofIfInfomsg, unix.SizeofIfInfomsg+unix.SizeofRtAttr+unix.IFNAMSIZ+4)
	attr := uint16(unix.IFLA_IFNAME)
	if len(name) >= unix.IFNAMSIZ {
		attr = unix.IFLA_ALT_IFNAME // as `ip link` looks up a long name
	}
	body = appendAttr(body, attr, append([]byte(name), 0))
	info, err = ask(c, unix.RTM_GETLINK, unix.RTM_NEWLINK, body, "link", ParseLinkInfo)
	switch {
	case errors.Is(err, unix.ENODEV):
		return LinkInfo{}, false, nil
	case err != nil:
		return LinkInfo{}, false, err
	}
	return info, true, nil
}

// Addrs dumps the addresses of the link with index, both families, in
// the kernel's order. It returns ErrDumpInterrupted (and nothing else) if
// the kernel says the dump was interrupted.
func (c *Conn) Addrs(index int) ([]netip.Prefix, error) {
	body := make([]byte, unix.SizeofIfAddrmsg)
	binary.NativeEndian.PutUint32(body[4:8], uint32(index))
	var out []netip.Prefix
	err := c.request(unix.RTM_GETADDR, unix.NLM_F_DUMP, body, func(m syscall.NetlinkMessage) error {
		if m.Header.Type != unix.RTM_NEWADDR {
			return nil
		}
		i, p, ok := ParseAddr(m)
		switch {
		case !ok:
			return fmt.Errorf("malformed address message of %d bytes", len(m.Data))
		case i == index && p.IsValid():
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RouteSource asks which source address a packet of IP protocol proto
// from port sport to dst:dport would leave with, as `ip route get DST
// ipproto P sport S dport D` does: the answer's RTA_PREFSRC. The kernel's
// errno (ENETUNREACH, EHOSTUNREACH: no route) is returned as it is.
func (c *Conn) RouteSource(dst netip.Addr, proto uint8, sport, dport uint16) (netip.Addr, error) {
	dst = dst.Unmap()
	body := make([]byte, unix.SizeofRtMsg, unix.SizeofRtMsg+4*(unix.SizeofRtAttr+16))
	body[0] = unix.AF_INET
	if dst.Is6() {
		body[0] = unix.AF_INET6
	}
	body[1] = byte(dst.BitLen()) // dst_len
	body = appendAttr(body, unix.RTA_DST, dst.AsSlice())
	body = appendAttr(body, unix.RTA_IP_PROTO, []byte{proto})
	body = appendAttr(body, unix.RTA_SPORT, binary.BigEndian.AppendUint16(nil, sport))
	body = appendAttr(body, unix.RTA_DPORT, binary.BigEndian.AppendUint16(nil, dport))
	src, err := ask(c, unix.RTM_GETROUTE, unix.RTM_NEWROUTE, body, "route", ParsePrefSrc)
	switch {
	case err != nil:
		return netip.Addr{}, err
	case !src.IsValid():
		return netip.Addr{}, errors.New("the route names no source address")
	}
	return src, nil
}

// ask sends a request of type typ that one message of type reply
// answers, and parses that message with parse; what names it in errors.
func ask[T any](c *Conn, typ, reply uint16, body []byte, what string, parse func(syscall.NetlinkMessage) (T, bool)) (T, error) {
	var v T
	found := false
	err := c.request(typ, 0, body, func(m syscall.NetlinkMessage) error {
		if m.Header.Type != reply {
			return nil
		}
		x, ok := parse(m)
		if !ok {
			return fmt.Errorf("malformed %s message of %d bytes", what, len(m.Data))
		}
		v, found = x, true
		return nil
	})
	if err == nil && !found {
		err = fmt.Errorf("no %s message in the kernel's answer", what)
	}
	return v, err
}

// ParsePrefSrc returns a route message's (RTM_NEWROUTE) preferred source
// address (RTA_PREFSRC), unmapped; invalid without one.
func ParsePrefSrc(m syscall.NetlinkMessage) (src netip.Addr, ok bool) {
	if len(m.Data) < unix.SizeofRtMsg {
		return netip.Addr{}, false
	}
	ok = attrs(m.Data[unix.SizeofRtMsg:], func(typ uint16, v []byte) {
		if typ == unix.RTA_PREFSRC {
			if a, aok := netip.AddrFromSlice(v); aok {
				src = a.Unmap()
			}
		}
	})
	return src, ok
}

// request sends one request of type typ with body and calls f with each
// message of its answer: one message, or a dump's until NLMSG_DONE. An
// NLMSG_ERROR with a code is that errno; an answer to an earlier request
// (one that timed out) is skipped.
func (c *Conn) request(typ uint16, flags uint16, body []byte, f func(syscall.NetlinkMessage) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return errors.New("netlink socket closed")
	}
	c.seq++
	seq := c.seq
	flags |= unix.NLM_F_REQUEST
	if flags&unix.NLM_F_DUMP == 0 {
		flags |= unix.NLM_F_ACK // the acknowledgement ends the answer; a dump's ends with NLMSG_DONE
	}
	msg := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(body))
	binary.NativeEndian.PutUint32(msg[0:4], uint32(unix.NLMSG_HDRLEN+len(body)))
	binary.NativeEndian.PutUint16(msg[4:6], typ)
	binary.NativeEndian.PutUint16(msg[6:8], flags)
	binary.NativeEndian.PutUint32(msg[8:12], seq)
	msg = append(msg, body...)
	if err := unix.Sendto(c.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("sending a netlink request: %w", err)
	}
	var interrupted bool
	for {
		n, from, err := unix.Recvfrom(c.fd, c.buf, unix.MSG_TRUNC)
		switch {
		case err != nil:
			return fmt.Errorf("reading the kernel's netlink answer: %w", err)
		case n > len(c.buf):
			return fmt.Errorf("netlink answer of %d bytes, longer than the %d-byte buffer", n, len(c.buf))
		}
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue // not the kernel's
		}
		msgs, err := syscall.ParseNetlinkMessage(c.buf[:n])
		if err != nil {
			return fmt.Errorf("parsing the kernel's netlink answer: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			if m.Header.Flags&unix.NLM_F_DUMP_INTR != 0 {
				interrupted = true
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE, unix.NLMSG_ERROR:
				// The end of a dump, or the acknowledgement of a
				// request: both with an errno, 0 for success.
				if len(m.Data) < 4 {
					return errors.New("malformed netlink end of answer")
				}
				if code := int32(binary.NativeEndian.Uint32(m.Data[:4])); code != 0 {
					return syscall.Errno(-code)
				}
				if interrupted {
					return ErrDumpInterrupted
				}
				return nil
			}
			if err := f(m); err != nil {
				return err
			}
		}
	}
}

// ParseLinkInfo returns a link message's (RTM_NEWLINK) index, flags and
// operational state.
func ParseLinkInfo(m syscall.NetlinkMessage) (info LinkInfo, ok bool) {
	if len(m.Data) < unix.SizeofIfInfomsg {
		return LinkInfo{}, false
	}
	info.Index = int(int32(binary.NativeEndian.Uint32(m.Data[4:8])))
	info.Flags = binary.NativeEndian.Uint32(m.Data[8:12])
	ok = attrs(m.Data[unix.SizeofIfInfomsg:], func(typ uint16, v []byte) {
		if typ == unix.IFLA_OPERSTATE && len(v) >= 1 {
			info.OperState = v[0]
		}
	})
	return info, ok
}

// ParseAddr returns an address message's (RTM_NEWADDR) link index and
// address with its prefix length, as vishvananda/netlink reads them: the
// local address (IFA_LOCAL) when there is one, with the prefix length of
// IFA_ADDRESS if both are the same IPv4 address and a full length
// otherwise (IFA_ADDRESS is then a point-to-point peer); else
// IFA_ADDRESS. An IPv4 address is unmapped. The prefix is invalid when
// the message has neither.
func ParseAddr(m syscall.NetlinkMessage) (index int, p netip.Prefix, ok bool) {
	if len(m.Data) < unix.SizeofIfAddrmsg {
		return 0, netip.Prefix{}, false
	}
	bits := int(m.Data[1])
	index = int(binary.NativeEndian.Uint32(m.Data[4:8]))
	var address, local netip.Addr
	ok = attrs(m.Data[unix.SizeofIfAddrmsg:], func(typ uint16, v []byte) {
		a, aok := netip.AddrFromSlice(v)
		if !aok {
			return
		}
		switch typ {
		case unix.IFA_ADDRESS:
			address = a.Unmap()
		case unix.IFA_LOCAL:
			local = a.Unmap()
		}
	})
	switch {
	case !ok:
		return 0, netip.Prefix{}, false
	case local.IsValid() && local.Is4() && local == address:
		p = netip.PrefixFrom(address, bits)
	case local.IsValid():
		p = netip.PrefixFrom(local, local.BitLen())
	case address.IsValid():
		p = netip.PrefixFrom(address, bits)
	}
	if p.Bits() < 0 {
		p = netip.Prefix{} // a length beyond the address's
	}
	return index, p, ok
}

func appendAttr(b []byte, typ uint16, v []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(unix.SizeofRtAttr+len(v)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, v...)
	for len(b)%unix.RTA_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}
