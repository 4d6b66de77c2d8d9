package labjudge

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Nexthops returns the gateways of the kernel route to prefix in the
// main table of the router's network namespace ns, sorted; none when there
// is no route. It reads the table through netlink.
func Nexthops(ns string, prefix netip.Prefix) ([]netip.Addr, error) {
	h, err := routeHandle(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	filter := &netlink.Route{Dst: IPNet(prefix), Table: unix.RT_TABLE_MAIN}
	routes, err := h.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("listing router routes: %w", err)
	}
	t := newRouteTable(prefix)
	for _, r := range routes {
		t.apply(unix.RTM_NEWROUTE, r)
	}
	return t.nexthops(), nil
}

// IPNet is p as netlink wants it.
func IPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// routeTable holds the router's routes to prefix by metric, as the
// kernel reports them.
type routeTable struct {
	prefix   netip.Prefix
	byMetric map[int][]netip.Addr
}

func newRouteTable(prefix netip.Prefix) routeTable {
	return routeTable{prefix: prefix, byMetric: map[int][]netip.Addr{}}
}

// apply updates the table with one route message. The kernel reports an
// IPv4 route whole, all its nexthops in one message, so a new or replaced
// route replaces the entry with its metric and a deleted one removes it.
func (t routeTable) apply(typ uint16, r netlink.Route) bool {
	if r.Dst == nil || r.Table != unix.RT_TABLE_MAIN || r.Type != unix.RTN_UNICAST {
		return false
	}
	ones, bits := r.Dst.Mask.Size()
	addr, ok := netip.AddrFromSlice(r.Dst.IP)
	if !ok || bits != 32 || netip.PrefixFrom(addr.Unmap(), ones) != t.prefix {
		return false
	}
	switch typ {
	case unix.RTM_NEWROUTE:
		t.byMetric[r.Priority] = gateways(r)
	case unix.RTM_DELROUTE:
		delete(t.byMetric, r.Priority)
	default:
		return false
	}
	return true
}

// nexthops returns the gateways of the route the kernel uses: the one
// with the lowest metric.
func (t routeTable) nexthops() []netip.Addr {
	best := -1
	for m := range t.byMetric {
		if best < 0 || m < best {
			best = m
		}
	}
	if best < 0 {
		return nil
	}
	return slices.Clone(t.byMetric[best])
}

// gateways returns a route's nexthop gateways, sorted.
func gateways(r netlink.Route) []netip.Addr {
	var gws []netip.Addr
	add := func(ip net.IP) {
		if a, ok := netip.AddrFromSlice(ip); ok {
			gws = append(gws, a.Unmap())
		}
	}
	if r.Gw != nil {
		add(r.Gw)
	}
	for _, nh := range r.MultiPath {
		if nh.Gw != nil {
			add(nh.Gw)
		}
	}
	slices.SortFunc(gws, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Compact(gws)
}

// Change is the router's nexthop set for the prefix from At on.
type Change struct {
	At       time.Time
	Nexthops []netip.Addr
}

func (c Change) String() string {
	return fmt.Sprintf("%s %s", c.At.Format("15:04:05.000"), FormatNexthops(c.Nexthops))
}

// FormatNexthops formats a nexthop set for people: "10.0.5.1, 10.0.7.1"
// or "no route".
func FormatNexthops(nh []netip.Addr) string {
	if len(nh) == 0 {
		return "no route"
	}
	s := make([]string, len(nh))
	for i, a := range nh {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// Watcher records every change of the router's nexthop set for a
// prefix, timestamped with this process's monotonic clock as netlink
// reports it, so a test can assert on the table continuously and measure
// from the moment it injected a fault.
type Watcher struct {
	mu      sync.Mutex
	changes []Change // changes[0] is the state when the watcher started
	err     error
	wake    chan struct{} // closed and replaced on every change
	done    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

// Watch starts a Watcher on the routes to prefix in the main table of the
// router's network namespace ns. Close it when done.
func Watch(ns string, prefix netip.Prefix) (*Watcher, error) {
	target, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("opening router namespace: %w", err)
	}
	defer target.Close()
	w := &Watcher{wake: make(chan struct{}), done: make(chan struct{}), stopped: make(chan struct{})}
	ch := make(chan netlink.RouteUpdate, 256)
	// Subscribe before listing, so no change falls between the two: an
	// update that the list already shows is applied again, harmlessly.
	err = netlink.RouteSubscribeWithOptions(ch, w.done, netlink.RouteSubscribeOptions{
		Namespace:         &target,
		ReceiveBufferSize: 1 << 20,
		ErrorCallback: func(err error) {
			select {
			case <-w.done:
				return // closing the socket makes the receive fail
			default:
			}
			w.mu.Lock()
			if w.err == nil {
				w.err = fmt.Errorf("route subscription: %w", err)
			}
			w.mu.Unlock()
		},
	})
	if err != nil {
		close(w.done)
		return nil, fmt.Errorf("subscribing to router routes: %w", err)
	}
	initial, err := Nexthops(ns, prefix)
	if err != nil {
		close(w.done)
		for range ch {
		}
		return nil, err
	}
	t := newRouteTable(prefix)
	if len(initial) > 0 {
		// Metric is unknown from Nexthops; updates carry the real one.
		t.byMetric[-1] = initial
	}
	w.changes = []Change{{At: time.Now(), Nexthops: initial}}
	go w.loop(ch, t)
	return w, nil
}

func (w *Watcher) loop(ch <-chan netlink.RouteUpdate, t routeTable) {
	defer close(w.stopped)
	seeded := len(t.byMetric) > 0
	for u := range ch {
		at := time.Now()
		if seeded && u.Route.Dst != nil {
			// The first real update of our prefix replaces the seed.
			if probe := newRouteTable(t.prefix); probe.apply(u.Type, u.Route) {
				delete(t.byMetric, -1)
				seeded = false
			}
		}
		if !t.apply(u.Type, u.Route) {
			continue
		}
		nh := t.nexthops()
		w.mu.Lock()
		if !slices.Equal(nh, w.changes[len(w.changes)-1].Nexthops) {
			w.changes = append(w.changes, Change{At: at, Nexthops: nh})
			close(w.wake)
			w.wake = make(chan struct{})
		}
		w.mu.Unlock()
	}
	w.mu.Lock()
	select {
	case <-w.done:
	default:
		if w.err == nil {
			w.err = fmt.Errorf("route subscription ended")
		}
	}
	close(w.wake)
	w.wake = make(chan struct{})
	w.mu.Unlock()
}

// Close stops the watcher.
func (w *Watcher) Close() {
	w.once.Do(func() { close(w.done) })
	<-w.stopped
}

// Err returns why the subscription broke, nil while it works.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Current returns the nexthop set now.
func (w *Watcher) Current() []netip.Addr {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.changes[len(w.changes)-1].Nexthops)
}

// Changes returns every recorded state, oldest first; the first is the
// state when the watcher started.
func (w *Watcher) Changes() []Change {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.changes)
}

// During returns the states in effect at any time in [from, to]: the one
// in effect at from and every change up to to. A zero to means now.
func (w *Watcher) During(from, to time.Time) []Change {
	return during(w.Changes(), from, to)
}

func during(all []Change, from, to time.Time) []Change {
	var out []Change
	for i, c := range all {
		if !to.IsZero() && c.At.After(to) {
			break
		}
		if i+1 < len(all) && !all[i+1].At.After(from) {
			continue // superseded before from
		}
		out = append(out, c)
	}
	return out
}

// Always returns the first state in [from, to] for which ok is false, or
// nil if ok held throughout: "s2's nexthop never disappeared".
func (w *Watcher) Always(from, to time.Time, ok func([]netip.Addr) bool) *Change {
	for _, c := range w.During(from, to) {
		if !ok(c.Nexthops) {
			return &c
		}
	}
	return nil
}

// WaitFor waits until a state in effect at or after since satisfies ok and
// returns it. If the state in effect at since already does, that state is
// returned with At = since.
func (w *Watcher) WaitFor(ctx context.Context, since time.Time, ok func([]netip.Addr) bool) (Change, error) {
	for {
		w.mu.Lock()
		wake, err := w.wake, w.err
		all := slices.Clone(w.changes)
		w.mu.Unlock()
		for _, c := range during(all, since, time.Time{}) {
			if ok(c.Nexthops) {
				if c.At.Before(since) {
					c.At = since
				}
				return c, nil
			}
		}
		if err != nil {
			return Change{}, err
		}
		select {
		case <-ctx.Done():
			return Change{}, fmt.Errorf("waiting for the router's nexthops (now %s): %w", FormatNexthops(all[len(all)-1].Nexthops), ctx.Err())
		case <-wake:
		}
	}
}

// Has is true for a set that contains a.
func Has(a netip.Addr) func([]netip.Addr) bool {
	return func(nh []netip.Addr) bool { return slices.Contains(nh, a) }
}

// Lacks is true for a set without a.
func Lacks(a netip.Addr) func([]netip.Addr) bool {
	return func(nh []netip.Addr) bool { return !slices.Contains(nh, a) }
}

// Exactly is true for the set of exactly these addresses.
func Exactly(addrs ...netip.Addr) func([]netip.Addr) bool {
	want := slices.Clone(addrs)
	slices.SortFunc(want, func(a, b netip.Addr) int { return a.Compare(b) })
	return func(nh []netip.Addr) bool { return slices.Equal(nh, want) }
}
