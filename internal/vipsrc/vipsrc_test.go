package vipsrc

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func cidr(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}

var (
	vip4 = netip.MustParseAddr("192.168.20.1")
	vip6 = netip.MustParseAddr("fd00::1")
)

// fakeNL is an in-memory rule and route table that records every change.
type fakeNL struct {
	rules  []netlink.Rule
	routes []netlink.Route
	calls  []string
	// dropPorts makes RuleAdd forget the port match, as kernels before
	// 4.17 do.
	dropPorts bool
	// noSrc makes RouteReplace refuse a source, as older kernels do while
	// the VIP is not on the host.
	noSrc bool
	// addrs are the host's addresses.
	addrs []netip.Addr
}

func (f *fakeNL) AddrList(_ netlink.Link, af int) ([]netlink.Addr, error) {
	var out []netlink.Addr
	for _, a := range f.addrs {
		if a.Is4() == (af == unix.AF_INET) {
			out = append(out, netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}})
		}
	}
	return out, nil
}

var _ NL = (*fakeNL)(nil)

func (f *fakeNL) RuleList(af int) ([]netlink.Rule, error) {
	var out []netlink.Rule
	for _, r := range f.rules {
		if r.Family == af {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeNL) RuleAdd(r *netlink.Rule) error {
	c := *r
	if f.dropPorts {
		c.Sport, c.IPProto, c.Protocol = nil, 0, 0
	}
	f.rules = append(f.rules, c)
	f.calls = append(f.calls, fmt.Sprintf("rule add %d pref %d table %d", r.Family, r.Priority, r.Table))
	return nil
}

func (f *fakeNL) RuleDel(r *netlink.Rule) error {
	for i, x := range f.rules {
		if x.Family == r.Family && x.Priority == r.Priority && x.Table == r.Table {
			f.rules = slices.Delete(f.rules, i, i+1)
			f.calls = append(f.calls, fmt.Sprintf("rule del %d pref %d table %d", r.Family, r.Priority, r.Table))
			return nil
		}
	}
	return unix.ENOENT
}

func (f *fakeNL) RouteListFiltered(af int, filter *netlink.Route, mask uint64) ([]netlink.Route, error) {
	var out []netlink.Route
	for _, r := range f.routes {
		if r.Family != af || r.Table != filter.Table {
			continue
		}
		if mask&netlink.RT_FILTER_PROTOCOL != 0 && r.Protocol != filter.Protocol {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

func (f *fakeNL) find(r *netlink.Route) int {
	return slices.IndexFunc(f.routes, func(x netlink.Route) bool {
		return x.Table == r.Table && x.Family == r.Family && routeKey(x) == routeKey(*r)
	})
}

func (f *fakeNL) RouteReplace(r *netlink.Route) error {
	if f.noSrc && r.Src != nil {
		return unix.EINVAL
	}
	f.calls = append(f.calls, fmt.Sprintf("route replace table %d %s src %s", r.Table, routeKey(*r), r.Src))
	if i := f.find(r); i >= 0 {
		f.routes[i] = *r
		return nil
	}
	f.routes = append(f.routes, *r)
	return nil
}

func (f *fakeNL) RouteDel(r *netlink.Route) error {
	i := f.find(r)
	if i < 0 {
		return unix.ESRCH
	}
	f.calls = append(f.calls, fmt.Sprintf("route del table %d %s", r.Table, routeKey(*r)))
	f.routes = slices.Delete(f.routes, i, i+1)
	return nil
}

func mainRoutes() []netlink.Route {
	return []netlink.Route{
		{Family: unix.AF_INET, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST, Gw: net.ParseIP("10.0.0.1"), LinkIndex: 2, Protocol: unix.RTPROT_BOOT},
		{Family: unix.AF_INET, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST, Dst: cidr("10.0.0.0/8"), LinkIndex: 2, Scope: netlink.SCOPE_LINK, Src: net.ParseIP("10.0.5.1"), Protocol: unix.RTPROT_KERNEL, Flags: unix.RTNH_F_LINKDOWN},
		{Family: unix.AF_INET, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_BLACKHOLE, Dst: cidr("203.0.113.0/24")},
		{Family: unix.AF_INET6, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST, Dst: cidr("fd00::/64"), LinkIndex: 3, Priority: 256},
	}
}

func TestMirror(t *testing.T) {
	got := Mirror(mainRoutes()[:3], 7, vip4)
	want := []netlink.Route{
		{Family: unix.AF_INET, Table: 7, Protocol: Protocol, Type: unix.RTN_UNICAST, Gw: net.ParseIP("10.0.0.1"), LinkIndex: 2, Src: net.IP(vip4.AsSlice())},
		// The kernel's linkdown flag is state, not configuration: left out.
		{Family: unix.AF_INET, Table: 7, Protocol: Protocol, Type: unix.RTN_UNICAST, Dst: cidr("10.0.0.0/8"), LinkIndex: 2, Scope: netlink.SCOPE_LINK, Src: net.IP(vip4.AsSlice())},
		{Family: unix.AF_INET, Table: 7, Protocol: Protocol, Type: unix.RTN_BLACKHOLE, Dst: cidr("203.0.113.0/24")},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Mirror (-want +got):\n%s", diff)
	}
}

func TestMirrorMultipath(t *testing.T) {
	main := []netlink.Route{{Family: unix.AF_INET, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST, Dst: cidr("0.0.0.0/0"),
		MultiPath: []*netlink.NexthopInfo{{LinkIndex: 2, Gw: net.ParseIP("10.0.0.1"), Flags: unix.RTNH_F_DEAD}, {LinkIndex: 3, Gw: net.ParseIP("10.1.0.1"), Hops: 1}}}}
	got := Mirror(main, 7, vip4)
	want := []netlink.Route{{Family: unix.AF_INET, Table: 7, Protocol: Protocol, Type: unix.RTN_UNICAST, Dst: cidr("0.0.0.0/0"), Src: net.IP(vip4.AsSlice()),
		MultiPath: []*netlink.NexthopInfo{{LinkIndex: 2, Gw: net.ParseIP("10.0.0.1")}, {LinkIndex: 3, Gw: net.ParseIP("10.1.0.1"), Hops: 1}}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Mirror (-want +got):\n%s", diff)
	}
}

func TestSyncInstallsAndIsIdempotent(t *testing.T) {
	f := &fakeNL{addrs: []netip.Addr{vip4, vip6}, routes: mainRoutes()}
	cfg := Config{Port: 51820, VIP4: vip4, VIP6: vip6}
	st, err := Sync(f, cfg)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if !st.InPlace() {
		t.Fatalf("not in place: %+v", st)
	}
	wantCalls := []string{
		"rule add 2 pref 22338 table 22338",
		"route replace table 22338 default tos 0 metric 4294967295 src <nil>", // the guard, first
		"route replace table 22338 default tos 0 metric 0 src 192.168.20.1",
		"route replace table 22338 10.0.0.0/8 tos 0 metric 0 src 192.168.20.1",
		"route replace table 22338 203.0.113.0/24 tos 0 metric 0 src <nil>",
		"rule add 10 pref 22338 table 22338",
		"route replace table 22338 default tos 0 metric 4294967295 src <nil>",
		"route replace table 22338 fd00::/64 tos 0 metric 256 src fd00::1",
	}
	if diff := cmp.Diff(wantCalls, f.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	r := f.rules[0]
	if r.Sport == nil || r.Sport.Start != 51820 || r.IPProto != unix.IPPROTO_UDP || r.IifName != "lo" || r.Protocol != Protocol {
		t.Errorf("rule = %+v, want iif lo ipproto udp sport 51820 proto %d", r, Protocol)
	}
	// IPv4 sends only unsourced lookups to the mirror; IPv6 cannot.
	if r.Src == nil || r.Src.String() != "0.0.0.0/32" {
		t.Errorf("IPv4 rule's source = %v, want 0.0.0.0/32", r.Src)
	}
	if r6 := f.rules[1]; r6.Src != nil {
		t.Errorf("IPv6 rule's source = %v, want none", r6.Src)
	}
	for _, fam := range st.Families {
		if !fam.Guard {
			t.Errorf("%s: guard not reported in place", fam.Family)
		}
	}
	guards := 0
	for _, rt := range f.routes {
		if rt.Table == DefaultTable && rt.Type == unix.RTN_UNREACHABLE && rt.Priority == GuardMetric {
			guards++
		}
	}
	if guards != 2 {
		t.Errorf("%d unreachable guard routes in table %d, want one per family", guards, DefaultTable)
	}
	if got, want := st.Detail(), "ipv4: udp sport 51820 from 192.168.20.1 (table 22338, 3/3 routes); ipv6: udp sport 51820 from fd00::1 (table 22338, 1/1 routes)"; got != want {
		t.Errorf("Detail = %q, want %q", got, want)
	}
	f.calls = nil
	if _, err := Sync(f, cfg); err != nil {
		t.Fatalf("second Sync: %v", err)
	}
	if len(f.calls) != 0 {
		t.Errorf("second Sync changed %q, want nothing", f.calls)
	}
}

func TestSyncFollowsMain(t *testing.T) {
	f := &fakeNL{addrs: []netip.Addr{vip4, vip6}, routes: mainRoutes()[:2]}
	cfg := Config{Port: 51820, VIP4: vip4}
	if _, err := Sync(f, cfg); err != nil {
		t.Fatal(err)
	}
	// The default route moves to another gateway, the LAN route goes.
	f.routes[0].Gw = net.ParseIP("10.0.0.254")
	f.routes = slices.Delete(f.routes, 1, 2)
	f.calls = nil
	if _, err := Sync(f, cfg); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"route del table 22338 10.0.0.0/8 tos 0 metric 0",
		"route replace table 22338 default tos 0 metric 0 src 192.168.20.1",
	}
	if diff := cmp.Diff(want, f.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestSyncPortChangeReplacesRule(t *testing.T) {
	f := &fakeNL{addrs: []netip.Addr{vip4, vip6}, routes: mainRoutes()[:1]}
	if _, err := Sync(f, Config{Port: 51820, VIP4: vip4}); err != nil {
		t.Fatal(err)
	}
	if _, err := Sync(f, Config{Port: 51999, VIP4: vip4}); err != nil {
		t.Fatal(err)
	}
	if len(f.rules) != 1 || f.rules[0].Sport.Start != 51999 {
		t.Errorf("rules = %+v, want one for port 51999", f.rules)
	}
}

func TestSyncOldKernel(t *testing.T) {
	f := &fakeNL{addrs: []netip.Addr{vip4, vip6}, routes: mainRoutes(), dropPorts: true}
	st, err := Sync(f, Config{Port: 51820, VIP4: vip4})
	if !errors.Is(err, ErrKernelTooOld) {
		t.Fatalf("Sync error = %v, want ErrKernelTooOld", err)
	}
	if len(f.rules) != 0 {
		t.Errorf("a rule without its port match stayed: %+v", f.rules)
	}
	if st.InPlace() || !strings.Contains(st.Detail(), "Linux 4.17") {
		t.Errorf("state = %+v (%s), want not in place, naming Linux 4.17", st, st.Detail())
	}
}

func TestSyncVIPAbsent(t *testing.T) {
	f := &fakeNL{routes: mainRoutes()[:2]}
	st, err := Sync(f, Config{Port: 51820, VIP4: vip4})
	if err == nil || !strings.Contains(err.Error(), "VIP 192.168.20.1 is not on this host") {
		t.Fatalf("Sync error = %v, want the VIP named", err)
	}
	if st.InPlace() || st.Families[0].Routes != 0 || !st.Families[0].Rule || !st.Families[0].Guard {
		t.Errorf("state = %+v, want the rule and the guard but no routes", st)
	}
	f.addrs = []netip.Addr{vip4}
	if st, err := Sync(f, Config{Port: 51820, VIP4: vip4}); err != nil || !st.InPlace() {
		t.Errorf("after the VIP returned: %+v, %v; want in place", st, err)
	}
}

func TestSyncRefusedSource(t *testing.T) {
	f := &fakeNL{addrs: []netip.Addr{vip4}, routes: mainRoutes()[:2], noSrc: true}
	st, err := Sync(f, Config{Port: 51820, VIP4: vip4})
	if err == nil || !strings.Contains(err.Error(), "VIP 192.168.20.1 is not on this host") {
		t.Fatalf("Sync error = %v, want the VIP named", err)
	}
	if st.InPlace() {
		t.Errorf("state = %+v, want not in place", st)
	}
}

// The VIP goes: mirrored routes go too (IPv6 keeps them without source);
// the guard stays, so nothing leaves from the unicast address.
func TestSyncVIPGoneRemovesMirror(t *testing.T) {
	f := &fakeNL{addrs: []netip.Addr{vip4, vip6}, routes: mainRoutes()}
	cfg := Config{Port: 51820, VIP6: vip6}
	if _, err := Sync(f, cfg); err != nil {
		t.Fatal(err)
	}
	f.addrs = []netip.Addr{vip4}
	if _, err := Sync(f, cfg); err == nil {
		t.Fatal("Sync without the VIP: no error")
	}
	var left []string
	for _, rt := range f.routes {
		if rt.Table == DefaultTable {
			left = append(left, fmt.Sprintf("type %d metric %d", rt.Type, rt.Priority))
		}
	}
	if diff := cmp.Diff([]string{fmt.Sprintf("type %d metric %d", unix.RTN_UNREACHABLE, GuardMetric)}, left); diff != "" {
		t.Errorf("table %d without the VIP (-want +got):\n%s", DefaultTable, diff)
	}
}

// Inspect reports a table without its guard.
func TestInspectMissingGuard(t *testing.T) {
	f := &fakeNL{addrs: []netip.Addr{vip4}, routes: mainRoutes()[:2]}
	cfg := Config{Port: 51820, VIP4: vip4}
	if _, err := Sync(f, cfg); err != nil {
		t.Fatal(err)
	}
	g := Guard(unix.AF_INET, DefaultTable)
	f.routes = slices.DeleteFunc(f.routes, func(r netlink.Route) bool { return r.Table == DefaultTable && r.Priority == g.Priority })
	st, err := Inspect(f, cfg)
	if err == nil || st.InPlace() || st.Families[0].Guard {
		t.Errorf("Inspect without the guard: %+v, %v; want not in place", st, err)
	}
	if st.Families[0].Routes != 2 {
		t.Errorf("Inspect counts %d mirrored routes, want 2", st.Families[0].Routes)
	}
}

func TestSyncRefusesForeignTable(t *testing.T) {
	f := &fakeNL{addrs: []netip.Addr{vip4, vip6}, routes: append(mainRoutes()[:1], netlink.Route{Family: unix.AF_INET, Table: DefaultTable, Dst: cidr("10.9.0.0/16"), Protocol: unix.RTPROT_BOOT})}
	_, err := Sync(f, Config{Port: 51820, VIP4: vip4})
	if err == nil || !strings.Contains(err.Error(), "did not add") {
		t.Fatalf("Sync error = %v, want a refusal of the foreign table", err)
	}
	if len(f.routes) != 2 {
		t.Errorf("the foreign route was touched: %+v", f.routes)
	}
}

func TestSyncNoPort(t *testing.T) {
	f := &fakeNL{addrs: []netip.Addr{vip4, vip6}, routes: mainRoutes()}
	st, err := Sync(f, Config{VIP4: vip4})
	if err != nil || st.InPlace() || len(f.calls) != 0 {
		t.Errorf("Sync without a port: %+v, %v, calls %q; want nothing done", st, err, f.calls)
	}
	if st.Detail() != "listen port not known yet" {
		t.Errorf("Detail = %q", st.Detail())
	}
}

func TestRemoveOnlyOurs(t *testing.T) {
	f := &fakeNL{addrs: []netip.Addr{vip4, vip6}, routes: mainRoutes()}
	cfg := Config{Port: 51820, VIP4: vip4, VIP6: vip6}
	if _, err := Sync(f, cfg); err != nil {
		t.Fatal(err)
	}
	f.rules = append(f.rules, netlink.Rule{Family: unix.AF_INET, Priority: 100, Table: 100})
	if err := Remove(f, cfg); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(mainRoutes(), f.routes); diff != "" {
		t.Errorf("routes after Remove (-want +got):\n%s", diff)
	}
	if len(f.rules) != 1 || f.rules[0].Priority != 100 {
		t.Errorf("rules after Remove = %+v, want only the foreign one", f.rules)
	}
	if err := Remove(f, cfg); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestInspectChangesNothing(t *testing.T) {
	f := &fakeNL{addrs: []netip.Addr{vip4}, routes: mainRoutes()[:2]}
	cfg := Config{Port: 51820, VIP4: vip4}
	st, err := Inspect(f, cfg)
	if err == nil || st.InPlace() || len(f.calls) != 0 {
		t.Fatalf("Inspect before Sync: %+v, %v, calls %q; want not in place and no change", st, err, f.calls)
	}
	if _, err := Sync(f, cfg); err != nil {
		t.Fatal(err)
	}
	f.calls = nil
	if st, err := Inspect(f, cfg); err != nil || !st.InPlace() || len(f.calls) != 0 {
		t.Errorf("Inspect after Sync: %+v, %v, calls %q", st, err, f.calls)
	}
	f.routes = append(f.routes, netlink.Route{Family: unix.AF_INET, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST, Dst: cidr("10.7.0.0/16"), LinkIndex: 2})
	if st, err := Inspect(f, cfg); err == nil || st.InPlace() || len(f.calls) != 0 {
		t.Errorf("Inspect with main ahead: %+v, %v, calls %q", st, err, f.calls)
	}
}
