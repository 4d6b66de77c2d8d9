package link

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wgbird/wgbird/internal/health"
)

func TestEvaluate(t *testing.T) {
	p := netip.MustParsePrefix
	vip4, vip6 := p("192.168.20.1/24"), p("fd00:20::1/64")
	up := State{Exists: true, Index: 7, Up: true, Running: true, OperState: "unknown",
		Addrs: []netip.Prefix{p("192.168.20.1/24"), p("fd00:20::1/64"), p("fe80::1/64")}}
	with := func(f func(*State)) State {
		s := up
		s.Addrs = append([]netip.Prefix(nil), up.Addrs...)
		f(&s)
		return s
	}
	hard := func(detail string) health.Check { return health.Check{Name: "link", Hard: true, Detail: detail} }

	tests := []struct {
		name string
		vips []netip.Prefix
		s    State
		err  error
		want health.Check
	}{
		{"up with VIP", []netip.Prefix{vip4}, up, nil,
			health.Check{Name: "link", OK: true, Detail: "wg0 up, VIPs 192.168.20.1/24 present"}},
		{"up with both VIPs", []netip.Prefix{vip4, vip6}, up, nil,
			health.Check{Name: "link", OK: true, Detail: "wg0 up, VIPs 192.168.20.1/24, fd00:20::1/64 present"}},
		{"up without VIPs", nil, up, nil,
			health.Check{Name: "link", OK: true, Detail: "wg0 up"}},
		{"operstate up", []netip.Prefix{vip4}, with(func(s *State) { s.OperState = "up" }), nil,
			health.Check{Name: "link", OK: true, Detail: "wg0 up, VIPs 192.168.20.1/24 present"}},
		{"4in6 VIP matches", []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr("::ffff:192.168.20.1"), 24)}, up, nil,
			health.Check{Name: "link", OK: true, Detail: "wg0 up, VIPs ::ffff:192.168.20.1/24 present"}},

		{"missing", []netip.Prefix{vip4}, State{}, nil, hard("link wg0 not found")},
		{"admin down", []netip.Prefix{vip4}, with(func(s *State) { s.Up, s.Running = false, false }), nil,
			hard("link wg0 is down")},
		{"no carrier", []netip.Prefix{vip4}, with(func(s *State) { s.Running = false }), nil,
			hard("link wg0 has no carrier")},
		{"operstate down", []netip.Prefix{vip4}, with(func(s *State) { s.OperState = "down" }), nil,
			hard("link wg0 has no carrier")},
		{"operstate lower layer down", []netip.Prefix{vip4}, with(func(s *State) { s.OperState = "lower-layer-down" }), nil,
			hard("link wg0 has no carrier")},
		{"VIP missing", []netip.Prefix{vip4}, with(func(s *State) { s.Addrs = s.Addrs[1:] }), nil,
			hard("VIP 192.168.20.1/24 missing on wg0")},
		{"VIP with another prefix length", []netip.Prefix{vip4}, with(func(s *State) { s.Addrs[0] = p("192.168.20.1/32") }), nil,
			hard("VIP 192.168.20.1/24 missing on wg0 (present as 192.168.20.1/32)")},
		{"both VIPs missing", []netip.Prefix{vip4, vip6}, with(func(s *State) { s.Addrs = nil }), nil,
			hard("VIP 192.168.20.1/24 missing on wg0; VIP fd00:20::1/64 missing on wg0")},
		{"other address in the VIP's subnet", []netip.Prefix{vip4}, with(func(s *State) { s.Addrs[0] = p("192.168.20.2/24") }), nil,
			hard("VIP 192.168.20.1/24 missing on wg0")},

		{"read error", []netip.Prefix{vip4}, State{}, errors.New("reading link wg0: operation not permitted"),
			health.Check{Name: "link", Detail: "reading link wg0: operation not permitted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Evaluate("wg0", tt.vips, tt.s, tt.err)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Evaluate (-want +got):\n%s", diff)
			}
		})
	}
}
