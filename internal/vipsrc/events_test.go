package vipsrc

import (
	"encoding/binary"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// nlmsg builds one netlink message of type typ with body.
func nlmsg(typ uint16, body []byte) []byte {
	b := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(body)+4)
	binary.NativeEndian.PutUint32(b[0:4], uint32(unix.NLMSG_HDRLEN+len(body)))
	binary.NativeEndian.PutUint16(b[4:6], typ)
	b = append(b, body...)
	for len(b)%unix.NLMSG_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}

// rtmsg builds a route message body in table (in the header when it
// fits, else in RTA_TABLE) with proto.
func rtmsg(table, proto int) []byte {
	b := make([]byte, 12)
	b[5] = byte(proto)
	if table < 256 {
		b[4] = byte(table)
		return b
	}
	b[4] = unix.RT_TABLE_UNSPEC
	a := make([]byte, 8)
	binary.NativeEndian.PutUint16(a[0:2], 8)
	binary.NativeEndian.PutUint16(a[2:4], unix.RTA_TABLE)
	binary.NativeEndian.PutUint32(a[4:8], uint32(table))
	// An attribute before RTA_TABLE, as the kernel writes RTA_DST first.
	dst := []byte{8, 0, unix.RTA_DST, 0, 10, 0, 0, 0}
	return append(append(b, dst...), a...)
}

func TestNeedsSync(t *testing.T) {
	const table = 22338
	for _, tt := range []struct {
		name string
		in   []byte
		want bool
	}{
		{"our own route added", nlmsg(unix.RTM_NEWROUTE, rtmsg(table, Protocol)), false},
		{"our own route, low table", nlmsg(unix.RTM_NEWROUTE, rtmsg(200, Protocol)), true}, // not our table
		{"our route deleted", nlmsg(unix.RTM_DELROUTE, rtmsg(table, Protocol)), true},
		{"a route added in main", nlmsg(unix.RTM_NEWROUTE, rtmsg(unix.RT_TABLE_MAIN, unix.RTPROT_BOOT)), true},
		{"another protocol in our table", nlmsg(unix.RTM_NEWROUTE, rtmsg(table, unix.RTPROT_STATIC)), true},
		{"an address added", nlmsg(unix.RTM_NEWADDR, make([]byte, 8)), true},
		{"an address removed", nlmsg(unix.RTM_DELADDR, make([]byte, 8)), true},
		{"two own routes", append(nlmsg(unix.RTM_NEWROUTE, rtmsg(table, Protocol)), nlmsg(unix.RTM_NEWROUTE, rtmsg(table, Protocol))...), false},
		{"own route then an address", append(nlmsg(unix.RTM_NEWROUTE, rtmsg(table, Protocol)), nlmsg(unix.RTM_NEWADDR, make([]byte, 8))...), true},
		{"short route message", nlmsg(unix.RTM_NEWROUTE, make([]byte, 8)), true},
		{"bad attribute length", nlmsg(unix.RTM_NEWROUTE, append(rtmsg(table, Protocol), 200, 0, 15, 0)), true},
		{"cut short", nlmsg(unix.RTM_NEWROUTE, rtmsg(table, Protocol))[:10], true},
		{"empty", nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := syscall.ParseNetlinkMessage(tt.in)
			if err != nil {
				msgs = nil // what rtnl.Socket.Read reports as ErrLost
			}
			if got := needsSync(msgs, table); got != tt.want {
				t.Errorf("needsSync = %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzNeedsSync(f *testing.F) {
	f.Add(nlmsg(unix.RTM_NEWROUTE, rtmsg(22338, Protocol)))
	f.Add(nlmsg(unix.RTM_NEWROUTE, rtmsg(7, Protocol)))
	f.Add(nlmsg(unix.RTM_NEWADDR, make([]byte, 8)))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Anything but a datagram of our own route additions calls for
		// a sync; nothing panics.
		msgs, err := syscall.ParseNetlinkMessage(b)
		if err != nil {
			return
		}
		if !needsSync(msgs, 22338) && len(b) < unix.NLMSG_HDRLEN+12 {
			t.Errorf("no sync for %d bytes, shorter than one route message", len(b))
		}
	})
}
