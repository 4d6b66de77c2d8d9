package labjudge

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func route(gws ...string) netlink.Route {
	r := netlink.Route{
		Dst:      &net.IPNet{IP: net.IPv4(192, 168, 20, 0).To4(), Mask: net.CIDRMask(24, 32)},
		Table:    unix.RT_TABLE_MAIN,
		Type:     unix.RTN_UNICAST,
		Priority: 32,
	}
	if len(gws) == 1 {
		r.Gw = net.ParseIP(gws[0])
		return r
	}
	for _, g := range gws {
		r.MultiPath = append(r.MultiPath, &netlink.NexthopInfo{Gw: net.ParseIP(g)})
	}
	return r
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func TestRouteTable(t *testing.T) {
	tab := newRouteTable(netip.MustParsePrefix("192.168.20.0/24"))
	steps := []struct {
		typ   uint16
		r     netlink.Route
		apply bool
		want  []netip.Addr
	}{
		{unix.RTM_NEWROUTE, route("10.0.7.1", "10.0.5.1"), true, addrs("10.0.5.1", "10.0.7.1")},
		{unix.RTM_NEWROUTE, route("10.0.7.1"), true, addrs("10.0.7.1")},
		{unix.RTM_NEWROUTE, func() netlink.Route { r := route("1.1.1.1"); r.Dst.IP = net.IPv4(10, 0, 0, 0).To4(); return r }(), false, addrs("10.0.7.1")},
		{unix.RTM_NEWROUTE, func() netlink.Route { r := route("1.1.1.1"); r.Table = 100; return r }(), false, addrs("10.0.7.1")},
		{unix.RTM_DELROUTE, route("10.0.7.1"), true, nil},
	}
	for i, s := range steps {
		if got := tab.apply(s.typ, s.r); got != s.apply {
			t.Errorf("step %d: apply = %v, want %v", i, got, s.apply)
		}
		if diff := cmp.Diff(s.want, tab.nexthops(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("step %d: nexthops (-want +got):\n%s", i, diff)
		}
	}
}

func TestWatcherQueries(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	s1, s2 := netip.MustParseAddr("10.0.5.1"), netip.MustParseAddr("10.0.7.1")
	w := &Watcher{
		changes: []Change{
			{At: at(0), Nexthops: []netip.Addr{s1, s2}},
			{At: at(100), Nexthops: []netip.Addr{s2}},
			{At: at(300), Nexthops: nil},
			{At: at(500), Nexthops: []netip.Addr{s1, s2}},
		},
		wake: make(chan struct{}),
	}
	if bad := w.Always(at(50), at(250), Has(s2)); bad != nil {
		t.Errorf("Always(has s2) in [50,250] = %v, want nil", bad)
	}
	if bad := w.Always(at(50), at(350), Has(s2)); bad == nil || !bad.At.Equal(at(300)) {
		t.Errorf("Always(has s2) in [50,350] = %v, want the change at 300", bad)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := w.WaitFor(ctx, at(50), Lacks(s1))
	if err != nil || !c.At.Equal(at(100)) {
		t.Errorf("WaitFor(lacks s1) since 50 = %v, %v; want the change at 100", c, err)
	}
	c, err = w.WaitFor(ctx, at(150), Lacks(s1))
	if err != nil || !c.At.Equal(at(150)) {
		t.Errorf("WaitFor(lacks s1) since 150 = %v, %v; want the state in effect, at 150", c, err)
	}
	c, err = w.WaitFor(ctx, at(150), Exactly(s2, s1))
	if err != nil || !c.At.Equal(at(500)) {
		t.Errorf("WaitFor(exactly both) since 150 = %v, %v; want the change at 500", c, err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	if _, err := w.WaitFor(short, at(600), Exactly()); err == nil {
		t.Error("WaitFor(no route) since 600 succeeded, want a timeout")
	}
}
