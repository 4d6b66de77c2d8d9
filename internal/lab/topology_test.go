package lab

import (
	"net/netip"
	"strings"
	"testing"
)

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
