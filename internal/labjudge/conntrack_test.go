package labjudge

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestMappingOf(t *testing.T) {
	tuple := func(src string, sport uint16, dst string, dport uint16) netlink.IPTuple {
		return netlink.IPTuple{Protocol: unix.IPPROTO_UDP, SrcIP: net.ParseIP(src), SrcPort: sport, DstIP: net.ParseIP(dst), DstPort: dport}
	}
	for _, tc := range []struct {
		name string
		flow netlink.ConntrackFlow
		want Mapping
		ok   bool
	}{{
		name: "client to the forwarded port",
		flow: netlink.ConntrackFlow{Forward: tuple("198.18.0.2", 40001, "198.18.0.1", 51820), Reverse: tuple("192.168.20.1", 51820, "198.18.0.2", 40001), TimeOut: 119},
		want: Mapping{Client: netip.MustParseAddrPort("198.18.0.2:40001"), Public: netip.MustParseAddrPort("198.18.0.1:51820"), Inside: netip.MustParseAddrPort("192.168.20.1:51820"), Timeout: 119 * time.Second},
		ok:   true,
	}, {
		name: "server's unicast address masqueraded to another port",
		flow: netlink.ConntrackFlow{Forward: tuple("10.0.9.1", 51820, "198.18.0.2", 40001), Reverse: tuple("198.18.0.2", 40001, "198.18.0.1", 1024), TimeOut: 29},
		want: Mapping{Client: netip.MustParseAddrPort("198.18.0.2:40001"), Public: netip.MustParseAddrPort("198.18.0.1:1024"), Inside: netip.MustParseAddrPort("10.0.9.1:51820"), FromInside: true, Timeout: 29 * time.Second},
		ok:   true,
	}, {
		name: "BFD between router and server",
		flow: netlink.ConntrackFlow{Forward: tuple("10.0.0.1", 34816, "10.0.5.1", 3784), Reverse: tuple("10.0.5.1", 3784, "10.0.0.1", 34816)},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := mappingOf(&tc.flow, netip.MustParsePrefix("198.18.0.0/24"), netip.MustParseAddr("198.18.0.1"))
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
				t.Errorf("mappingOf (-want +got):\n%s", diff)
			}
		})
	}
}
