// Package rtnltest builds rtnetlink notifications as the kernel writes
// them, for the tests of the packages that read them through rtnl.
package rtnltest

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// Message encodes one netlink message of type typ with body, padded as
// netlink aligns messages.
func Message(typ uint16, body []byte) []byte {
	b := binary.NativeEndian.AppendUint32(nil, uint32(unix.NLMSG_HDRLEN+len(body)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, make([]byte, unix.NLMSG_HDRLEN-6)...) // flags, seq, pid
	return pad(append(b, body...))
}

// Attr encodes one attribute, padded.
func Attr(typ uint16, v []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(unix.SizeofRtAttr+len(v)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	return pad(append(b, v...))
}

// U32 encodes an attribute's 32-bit value.
func U32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// Link is a link message's body: index, then name as IFLA_IFNAME.
func Link(index int, name string) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(b[4:8], uint32(index))
	return append(b, Attr(unix.IFLA_IFNAME, append([]byte(name), 0))...)
}

// LinkState is a link message's body with index, flags and operational
// state (IFLA_OPERSTATE), as the kernel answers RTM_GETLINK.
func LinkState(index int, name string, flags uint32, oper uint8) []byte {
	b := Link(index, name)
	binary.NativeEndian.PutUint32(b[8:12], flags)
	return append(b, Attr(unix.IFLA_OPERSTATE, []byte{oper})...)
}

// Address is an address message's body on the link with index: prefix
// length bits, then IFA_ADDRESS and IFA_LOCAL when not nil, as the kernel
// dumps them.
func Address(index, bits int, address, local []byte) []byte {
	b := Addr(index)
	b[0] = unix.AF_INET
	if len(address) == 16 || len(local) == 16 {
		b[0] = unix.AF_INET6
	}
	b[1] = byte(bits)
	if address != nil {
		b = append(b, Attr(unix.IFA_ADDRESS, address)...)
	}
	if local != nil {
		b = append(b, Attr(unix.IFA_LOCAL, local)...)
	}
	return b
}

// Addr is an address message's body on the link with index.
func Addr(index int) []byte {
	b := make([]byte, unix.SizeofIfAddrmsg)
	binary.NativeEndian.PutUint32(b[4:8], uint32(index))
	return b
}

// Route is a route message's body in table with proto: the table in the
// header when it fits, else in RTA_TABLE after an RTA_DST, as the kernel
// writes them.
func Route(table, proto int) []byte {
	b := make([]byte, unix.SizeofRtMsg)
	b[5] = byte(proto)
	if table < 256 {
		b[4] = byte(table)
		return b
	}
	b[4] = unix.RT_TABLE_UNSPEC
	b = append(b, Attr(unix.RTA_DST, []byte{10, 0, 0, 0})...)
	return append(b, Attr(unix.RTA_TABLE, U32(uint32(table)))...)
}

func pad(b []byte) []byte {
	for len(b)%unix.NLMSG_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}
