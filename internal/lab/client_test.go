package lab

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestParseEndpoints(t *testing.T) {
	got, err := parseEndpoints("AAA=\t198.18.0.1:51820\nBBB=\t(none)\nCCC=\t[fd00::1]:51820\n")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]netip.AddrPort{
		"AAA=": netip.MustParseAddrPort("198.18.0.1:51820"),
		"BBB=": {},
		"CCC=": netip.MustParseAddrPort("[fd00::1]:51820"),
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("parseEndpoints (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"AAA=", "AAA=\tnot-an-endpoint", "A B C"} {
		if _, err := parseEndpoints(bad); err == nil {
			t.Errorf("parseEndpoints(%q): no error", bad)
		}
	}
}

func TestOutages(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	var echoes []Echo
	// 0-400 answered, 500-1400 lost (1000 answered 3 s late: still lost),
	// 1500-1900 answered, 2000 on lost.
	for i := 0; i < 25; i++ {
		e := Echo{Seq: i, Sent: at(i * 100)}
		switch {
		case i == 10:
			e.Reply = e.Sent.Add(3 * time.Second)
		case i < 5, i >= 15 && i < 20:
			e.Reply = e.Sent.Add(time.Millisecond)
		}
		echoes = append(echoes, e)
	}
	got := Outages(echoes, t0, time.Time{})
	want := []Outage{{From: at(500), To: at(1500), Lost: 10}, {From: at(2000), Lost: 5}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Outages (-want +got):\n%s", diff)
	}
	if d := got[0].Duration(); d != time.Second {
		t.Errorf("duration %s, want 1s", d)
	}
	if o := LongestOutage(echoes, t0, at(2000)); o.Duration() != time.Second || o.Lost != 10 {
		t.Errorf("LongestOutage before the open run: %+v", o)
	}
	if o := LongestOutage(echoes, t0, time.Time{}); !o.To.IsZero() {
		t.Errorf("LongestOutage with an open run: %+v, want it open", o)
	}
	if o := LongestOutage(echoes, t0, at(500)); o.Duration() != 0 {
		t.Errorf("LongestOutage without loss: %+v", o)
	}
}

func TestEchoRoundTrip(t *testing.T) {
	req := echoRequest(0x1234, 77)
	if icmpChecksum(req) != 0 {
		t.Errorf("echo request checksum does not verify")
	}
	reply := append([]byte{0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 100, 64, 0, 1, 100, 64, 0, 2}, req...)
	reply[20] = 0 // echo reply
	id, seq, ok := parseEchoReply(reply)
	if !ok || id != 0x1234 || seq != 77 {
		t.Errorf("parseEchoReply = %#x, %d, %v", id, seq, ok)
	}
	if _, _, ok := parseEchoReply(req); ok {
		t.Errorf("an echo request parsed as a reply")
	}
}

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
			got, ok := mappingOf(&tc.flow)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
				t.Errorf("mappingOf (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNATRules(t *testing.T) {
	rules := NATRules(Servers)
	for _, want := range []string{
		`iifname "wan" ip daddr 198.18.0.1 udp dport 51820 dnat to 192.168.20.1:51820`,
		`iifname "wan" ip daddr 198.18.0.1 udp dport 51831 dnat to 10.0.5.1:51820`,
		`iifname "wan" ip daddr 198.18.0.1 udp dport 51832 dnat to 10.0.7.1:51820`,
		`oifname "wan" masquerade`,
		`iifname "wan" drop`,
	} {
		if !strings.Contains(rules, want) {
			t.Errorf("NAT rules lack %q:\n%s", want, rules)
		}
	}
	if strings.Contains(rules, "10.0.9.1") {
		t.Errorf("two servers' rules forward to s3:\n%s", rules)
	}
	l := New(Config{})
	if got := l.DirectEndpoint(AllServers[2]); got != netip.MustParseAddrPort("198.18.0.1:51833") {
		t.Errorf("DirectEndpoint(s3) = %s", got)
	}
	if got := l.Endpoint(); got != netip.MustParseAddrPort("198.18.0.1:51820") {
		t.Errorf("Endpoint() = %s", got)
	}
	if got := New(Config{Routed: true}).Endpoint(); got != netip.MustParseAddrPort("192.168.20.1:51820") {
		t.Errorf("routed Endpoint() = %s", got)
	}
}
