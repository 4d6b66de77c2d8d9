package vipsrc

import (
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/wgbird/wgbird/internal/rtnl/rtnltest"
)

func TestNeedsSync(t *testing.T) {
	const table = 22338
	for _, tt := range []struct {
		name string
		in   []byte
		want bool
	}{
		{"our own route added", rtnltest.Message(unix.RTM_NEWROUTE, rtnltest.Route(table, Protocol)), false},
		{"our own route, low table", rtnltest.Message(unix.RTM_NEWROUTE, rtnltest.Route(200, Protocol)), true}, // not our table
		{"our route deleted", rtnltest.Message(unix.RTM_DELROUTE, rtnltest.Route(table, Protocol)), true},
		{"a route added in main", rtnltest.Message(unix.RTM_NEWROUTE, rtnltest.Route(unix.RT_TABLE_MAIN, unix.RTPROT_BOOT)), true},
		{"another protocol in our table", rtnltest.Message(unix.RTM_NEWROUTE, rtnltest.Route(table, unix.RTPROT_STATIC)), true},
		{"an address added", rtnltest.Message(unix.RTM_NEWADDR, rtnltest.Addr(3)), true},
		{"an address removed", rtnltest.Message(unix.RTM_DELADDR, rtnltest.Addr(3)), true},
		{"two own routes", append(rtnltest.Message(unix.RTM_NEWROUTE, rtnltest.Route(table, Protocol)), rtnltest.Message(unix.RTM_NEWROUTE, rtnltest.Route(table, Protocol))...), false},
		{"own route then an address", append(rtnltest.Message(unix.RTM_NEWROUTE, rtnltest.Route(table, Protocol)), rtnltest.Message(unix.RTM_NEWADDR, rtnltest.Addr(3))...), true},
		{"short route message", rtnltest.Message(unix.RTM_NEWROUTE, make([]byte, 8)), true},
		{"bad attribute length", rtnltest.Message(unix.RTM_NEWROUTE, append(rtnltest.Route(table, Protocol), 200, 0, 15, 0)), true},
		{"cut short", rtnltest.Message(unix.RTM_NEWROUTE, rtnltest.Route(table, Protocol))[:10], true},
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
	f.Add(rtnltest.Message(unix.RTM_NEWROUTE, rtnltest.Route(22338, Protocol)))
	f.Add(rtnltest.Message(unix.RTM_NEWROUTE, rtnltest.Route(7, Protocol)))
	f.Add(rtnltest.Message(unix.RTM_NEWADDR, rtnltest.Addr(3)))
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
