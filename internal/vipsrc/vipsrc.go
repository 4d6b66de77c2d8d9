package vipsrc

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

const (
	// DefaultTable is the routing table of the mirror (0x5742, "WB").
	DefaultTable = 22338
	// DefaultPriority is the rule's priority: after the local table (0),
	// before main (32766) and wg-quick's rules (32764, 32765).
	DefaultPriority = 22338
	// Protocol tags the rules and routes this package adds (rtnetlink's
	// protocol field), so that it only ever removes its own.
	Protocol = 0x57
	// GuardMetric is the metric of the table's guard route, an
	// `unreachable default` behind every mirrored route: a packet the
	// mirror cannot source from the VIP (the VIP is gone, or main has no
	// route to its destination) is refused, never sent from another
	// address.
	GuardMetric = math.MaxUint32
)

// ErrKernelTooOld is returned when the kernel dropped the rule's port
// match: sport and ipproto rules need Linux 4.17.
var ErrKernelTooOld = errors.New("the kernel does not match rules on UDP source port (ipproto/sport rules need Linux 4.17)")

// Config says what to source from which address.
type Config struct {
	// Port is the WireGuard listen port; 0 installs nothing.
	Port int
	// VIP4 and VIP6 are the sources for each family; an invalid address
	// leaves that family alone.
	VIP4, VIP6 netip.Addr
	// Table and Priority default to DefaultTable and DefaultPriority.
	Table, Priority int
}

func (c Config) withDefaults() Config {
	if c.Table == 0 {
		c.Table = DefaultTable
	}
	if c.Priority == 0 {
		c.Priority = DefaultPriority
	}
	return c
}

// families returns the configured families with their VIP.
func (c Config) families() []family {
	var out []family
	if c.VIP4.IsValid() {
		out = append(out, family{unix.AF_INET, "ipv4", c.VIP4})
	}
	if c.VIP6.IsValid() {
		out = append(out, family{unix.AF_INET6, "ipv6", c.VIP6})
	}
	return out
}

type family struct {
	af   int
	name string
	vip  netip.Addr
}

// NL is the netlink this package uses; *netlink.Handle has it.
type NL interface {
	RuleList(family int) ([]netlink.Rule, error)
	RuleAdd(rule *netlink.Rule) error
	RuleDel(rule *netlink.Rule) error
	RouteListFiltered(family int, filter *netlink.Route, filterMask uint64) ([]netlink.Route, error)
	RouteReplace(route *netlink.Route) error
	RouteDel(route *netlink.Route) error
	AddrList(link netlink.Link, family int) ([]netlink.Addr, error)
}

var _ NL = (*netlink.Handle)(nil)

// State is what Sync found and did, per family.
type State struct {
	Port     int           `json:"port"`
	Table    int           `json:"table"`
	Families []FamilyState `json:"families"`
}

// FamilyState is one address family's part of the set-up.
type FamilyState struct {
	Family string `json:"family"` // "ipv4", "ipv6"
	VIP    string `json:"vip"`
	// Rule: the policy rule is in place with its port match.
	Rule bool `json:"rule"`
	// Routes is how many of the main table's routes are mirrored with the
	// VIP as source; Want is how many there are to mirror.
	Routes int `json:"routes"`
	Want   int `json:"want"`
	// Guard: the table's unreachable default (GuardMetric) is in place,
	// so an unsourced packet never leaves from another address.
	Guard bool `json:"guard"`
	// Error says why the family is not (fully) in place.
	Error string `json:"error,omitempty"`
}

// InPlace reports whether every family has its rule and all its routes.
func (s State) InPlace() bool {
	if s.Port == 0 || len(s.Families) == 0 {
		return false
	}
	for _, f := range s.Families {
		if !f.Rule || !f.Guard || f.Routes < f.Want || f.Want == 0 || f.Error != "" {
			return false
		}
	}
	return true
}

// Detail says it in a line for status and check.
func (s State) Detail() string {
	if s.Port == 0 {
		return "listen port not known yet"
	}
	var parts []string
	for _, f := range s.Families {
		switch {
		case f.Error != "":
			parts = append(parts, fmt.Sprintf("%s: %s", f.Family, f.Error))
		default:
			parts = append(parts, fmt.Sprintf("%s: udp sport %d from %s (table %d, %d/%d routes)", f.Family, s.Port, f.VIP, s.Table, f.Routes, f.Want))
		}
	}
	if len(parts) == 0 {
		return "no VIP to source from"
	}
	return strings.Join(parts, "; ")
}

// Sync puts the rules and the mirror in place and corrects any
// difference: a missing or foreign rule, a route of main not mirrored
// (or mirrored with an old source), a mirrored route main no longer has.
// It returns what is in place; the error is the first failure (also in
// the family's Error). A VIP that is not on the host yet is reported, not
// retried: the caller syncs again on the next address event.
func Sync(h NL, cfg Config) (State, error) { return syncAll(h, cfg, false) }

// Inspect reports what is in place without changing anything (for
// `wgbird check`).
func Inspect(h NL, cfg Config) (State, error) { return syncAll(h, cfg, true) }

func syncAll(h NL, cfg Config, dry bool) (State, error) {
	cfg = cfg.withDefaults()
	st := State{Port: cfg.Port, Table: cfg.Table}
	if cfg.Port == 0 {
		return st, nil
	}
	var first error
	for _, f := range cfg.families() {
		fs, err := syncFamily(h, cfg, f, dry)
		st.Families = append(st.Families, fs)
		if err != nil && first == nil {
			first = err
		}
	}
	return st, first
}

func syncFamily(h NL, cfg Config, f family, dry bool) (FamilyState, error) {
	fs := FamilyState{Family: f.name, VIP: f.vip.String()}
	fail := func(err error) (FamilyState, error) {
		fs.Error = err.Error()
		return fs, err
	}
	if dry {
		ok, err := hasRule(h, cfg, f)
		if err != nil {
			return fail(err)
		}
		if !ok {
			return fail(fmt.Errorf("no rule for udp sport %d (wgbird run puts it in place)", cfg.Port))
		}
	} else if err := ensureRule(h, cfg, f); err != nil {
		return fail(err)
	}
	fs.Rule = true
	main, err := h.RouteListFiltered(f.af, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return fail(fmt.Errorf("listing the main %s table: %w", f.name, err))
	}
	have, err := h.RouteListFiltered(f.af, &netlink.Route{Table: cfg.Table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return fail(fmt.Errorf("listing table %d: %w", cfg.Table, err))
	}
	for _, r := range have {
		if r.Protocol != Protocol {
			return fail(fmt.Errorf("table %d holds a route wgbird did not add (%s): choose another vip_source_table", cfg.Table, routeKey(r)))
		}
	}
	mirror := Mirror(main, cfg.Table, f.vip)
	fs.Want = len(mirror)
	local, err := isLocal(h, f)
	if err != nil {
		return fail(err)
	}
	if !local {
		// Never a route with a source the host does not hold (newer
		// kernels accept one): the table keeps only its guard, which
		// refuses what would otherwise leave from the unicast address,
		// and the next address event syncs again.
		mirror = nil
	}
	// The guard first (Diff keeps want's order): while it is missing, an
	// unsourced packet the mirror does not cover falls through to main's
	// unicast source.
	guard := Guard(f.af, cfg.Table)
	want := append([]netlink.Route{guard}, mirror...)
	add, del := Diff(want, have)
	guardMissing := len(add) > 0 && routeKey(add[0]) == routeKey(guard)
	if dry {
		fs.Routes = len(want) - len(add)
		fs.Guard = !guardMissing
		if !guardMissing {
			fs.Routes--
		}
		var err error
		switch {
		case !local:
			err = fmt.Errorf("VIP %s is not on this host", f.vip)
		case fs.Want == 0:
			err = fmt.Errorf("the main %s table has no route: no client is reachable", f.name)
		case len(add) > 0 || len(del) > 0:
			err = fmt.Errorf("table %d differs from main in %d routes (wgbird run keeps it in step)", cfg.Table, len(add)+len(del))
		}
		if err != nil {
			fs.Error = err.Error()
		}
		return fs, err
	}
	var first error
	for i := range del {
		if err := h.RouteDel(&del[i]); err != nil && !errors.Is(err, unix.ESRCH) && first == nil {
			first = fmt.Errorf("removing mirrored route %s: %w", routeKey(del[i]), err)
		}
	}
	failed := 0
	fs.Guard = true
	for i := range add {
		if err := h.RouteReplace(&add[i]); err != nil {
			isGuard := i == 0 && guardMissing
			if isGuard {
				fs.Guard = false
			} else {
				failed++
			}
			if first == nil {
				switch {
				case isGuard:
					first = fmt.Errorf("adding the guard route (unreachable default metric %d) to table %d: %w", uint32(GuardMetric), cfg.Table, err)
				case errors.Is(err, unix.EINVAL):
					// The kernel refuses a source that is not a local
					// address: the VIP is not on the host (yet).
					first = fmt.Errorf("VIP %s is not on this host: mirrored routes wait for it", f.vip)
				default:
					first = fmt.Errorf("mirroring route %s: %w", routeKey(add[i]), err)
				}
			}
		}
	}
	fs.Routes = len(mirror) - failed
	if !local && first == nil {
		first = fmt.Errorf("VIP %s is not on this host: mirrored routes wait for it", f.vip)
	}
	if fs.Want == 0 && first == nil {
		first = fmt.Errorf("the main %s table has no route: no client is reachable", f.name)
	}
	if first != nil {
		fs.Error = first.Error()
	}
	return fs, first
}

// isLocal reports whether the family's VIP is an address of the host.
func isLocal(h NL, f family) (bool, error) {
	addrs, err := h.AddrList(nil, f.af)
	if err != nil {
		return false, fmt.Errorf("listing %s addresses: %w", f.name, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == f.vip {
			return true, nil
		}
	}
	return false, nil
}

// ourRule is the rule for one family.
func ourRule(cfg Config, af int) *netlink.Rule {
	r := netlink.NewRule()
	r.Family = af
	r.Priority = cfg.Priority
	r.Table = cfg.Table
	r.IifName = "lo"
	r.IPProto = unix.IPPROTO_UDP
	r.Sport = netlink.NewRulePortRange(uint16(cfg.Port), uint16(cfg.Port))
	r.Protocol = Protocol
	if af == unix.AF_INET {
		r.Src = unsourced4()
	}
	return r
}

// unsourced4 is the rule's `from 0.0.0.0/32`: an IPv4 route lookup without
// a source (one WireGuard has not cached) goes to the mirror, one with a
// cached source (the VIP, or the unicast address a peer wrote to) to main
// as before. IPv6 cannot tell the two apart (a rule with a source never
// matches a lookup without one), so its rule has none and its lookups all
// go to the mirror.
func unsourced4() *net.IPNet {
	return &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(32, 32)}
}

// Guard is the table's last route for family af: `unreachable default
// metric GuardMetric`. A lookup the mirror has no route for (the VIP is
// gone: the kernel removed the routes with its source) ends there, with
// EHOSTUNREACH, instead of falling through to main, whose route would send
// the packet from the unicast address and pin the client there.
func Guard(af, table int) netlink.Route {
	dst := &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
	if af == unix.AF_INET6 {
		dst = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
	}
	return netlink.Route{Family: af, Dst: dst, Type: unix.RTN_UNREACHABLE, Priority: GuardMetric, Table: table, Protocol: Protocol}
}

// isOurs reports whether a listed rule is one this package adds (any
// port): identified by priority and table, since a kernel that drops the
// port match drops the protocol tag as well.
func isOurs(r netlink.Rule, cfg Config) bool {
	return r.Priority == cfg.Priority && r.Table == cfg.Table
}

func matches(r netlink.Rule, cfg Config, af int) bool {
	src := r.Src == nil
	if af == unix.AF_INET {
		src = r.Src != nil && r.Src.String() == unsourced4().String()
	}
	return r.Sport != nil && r.Sport.Start == uint16(cfg.Port) && r.Sport.End == uint16(cfg.Port) &&
		r.IPProto == unix.IPPROTO_UDP && r.IifName == "lo" && r.Dport == nil && src && r.Dst == nil &&
		r.Mark == 0 && !r.Invert
}

func hasRule(h NL, cfg Config, f family) (bool, error) {
	rules, err := h.RuleList(f.af)
	if err != nil {
		return false, fmt.Errorf("listing %s rules: %w", f.name, err)
	}
	for _, r := range rules {
		if isOurs(r, cfg) && matches(r, cfg, f.af) {
			return true, nil
		}
	}
	return false, nil
}

func ensureRule(h NL, cfg Config, f family) error {
	rules, err := h.RuleList(f.af)
	if err != nil {
		return fmt.Errorf("listing %s rules: %w", f.name, err)
	}
	found := false
	for _, r := range rules {
		if !isOurs(r, cfg) {
			continue
		}
		if matches(r, cfg, f.af) && !found {
			found = true
			continue
		}
		// An old port, a duplicate, or one a kernel stripped.
		if err := delRule(h, r); err != nil {
			return err
		}
	}
	if found {
		return nil
	}
	if err := h.RuleAdd(ourRule(cfg, f.af)); err != nil {
		return fmt.Errorf("adding %s rule for udp sport %d: %w", f.name, cfg.Port, err)
	}
	rules, err = h.RuleList(f.af)
	if err != nil {
		return fmt.Errorf("listing %s rules: %w", f.name, err)
	}
	for _, r := range rules {
		if isOurs(r, cfg) && !matches(r, cfg, f.af) {
			_ = delRule(h, r)
			return ErrKernelTooOld
		}
		if isOurs(r, cfg) {
			return nil
		}
	}
	return fmt.Errorf("the %s rule for udp sport %d did not stay in place", f.name, cfg.Port)
}

func delRule(h NL, r netlink.Rule) error {
	if err := h.RuleDel(&r); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("removing rule %d: %w", r.Priority, err)
	}
	return nil
}

// Remove deletes the rules of both families at cfg's priority and table
// and every route this package added to the table. Missing ones are not an
// error.
func Remove(h NL, cfg Config) error {
	cfg = cfg.withDefaults()
	var errs []error
	for _, af := range []int{unix.AF_INET, unix.AF_INET6} {
		rules, err := h.RuleList(af)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing rules: %w", err))
			continue
		}
		for _, r := range rules {
			if isOurs(r, cfg) {
				if err := delRule(h, r); err != nil {
					errs = append(errs, err)
				}
			}
		}
		routes, err := h.RouteListFiltered(af, &netlink.Route{Table: cfg.Table, Protocol: Protocol}, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing table %d: %w", cfg.Table, err))
			continue
		}
		for i := range routes {
			if err := h.RouteDel(&routes[i]); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("removing mirrored route %s: %w", routeKey(routes[i]), err))
			}
		}
	}
	return errors.Join(errs...)
}

// Mirror returns the routes of table for main's: every unicast route
// with src vip, and unreachable, blackhole, prohibit and throw routes as
// they are (so a lookup in the mirror decides as main does). Other types
// (local, broadcast, multicast: not in main normally) are left out.
func Mirror(main []netlink.Route, table int, vip netip.Addr) []netlink.Route {
	var out []netlink.Route
	src := net.IP(vip.AsSlice())
	for _, r := range main {
		m := netlink.Route{
			Family:    r.Family,
			Dst:       r.Dst,
			Gw:        r.Gw,
			Via:       r.Via,
			LinkIndex: r.LinkIndex,
			Scope:     r.Scope,
			Type:      r.Type,
			Priority:  r.Priority,
			Tos:       r.Tos,
			Flags:     r.Flags & unix.RTNH_F_ONLINK,
			MTU:       r.MTU,
			AdvMSS:    r.AdvMSS,
			Table:     table,
			Protocol:  Protocol,
		}
		switch r.Type {
		case unix.RTN_UNICAST, unix.RTN_UNSPEC:
			m.Src = src
		case unix.RTN_UNREACHABLE, unix.RTN_BLACKHOLE, unix.RTN_PROHIBIT, unix.RTN_THROW:
			m.LinkIndex, m.Gw, m.Scope = 0, nil, r.Scope
		default:
			continue
		}
		for _, nh := range r.MultiPath {
			m.MultiPath = append(m.MultiPath, &netlink.NexthopInfo{
				LinkIndex: nh.LinkIndex, Hops: nh.Hops, Gw: nh.Gw, Via: nh.Via, Flags: nh.Flags & unix.RTNH_F_ONLINK,
			})
		}
		if len(m.MultiPath) > 0 {
			m.LinkIndex, m.Gw = 0, nil
		}
		out = append(out, m)
	}
	return out
}

// Diff returns the routes of want that have no equal in have (to
// replace) and the routes of have that want lacks (to delete). Routes are
// one and the same when destination, tos and metric match, as the kernel
// counts them; equal when their paths and source match too.
func Diff(want, have []netlink.Route) (add, del []netlink.Route) {
	haveBy := make(map[string]netlink.Route, len(have))
	for _, r := range have {
		haveBy[routeKey(r)] = r
	}
	wantKeys := make(map[string]bool, len(want))
	for _, w := range want {
		k := routeKey(w)
		wantKeys[k] = true
		if h, ok := haveBy[k]; !ok || !sameRoute(w, h) {
			add = append(add, w)
		}
	}
	for _, h := range have {
		if !wantKeys[routeKey(h)] {
			del = append(del, h)
		}
	}
	return add, del
}

func routeKey(r netlink.Route) string {
	dst := "default"
	if r.Dst != nil {
		if ones, _ := r.Dst.Mask.Size(); ones > 0 || !r.Dst.IP.IsUnspecified() {
			dst = r.Dst.String()
		}
	}
	return fmt.Sprintf("%s tos %d metric %d", dst, r.Tos, r.Priority)
}

func sameRoute(a, b netlink.Route) bool {
	return a.Type == b.Type && a.LinkIndex == b.LinkIndex && a.Gw.Equal(b.Gw) && a.Src.Equal(b.Src) &&
		a.Scope == b.Scope && len(a.MultiPath) == len(b.MultiPath) &&
		slices.EqualFunc(a.MultiPath, b.MultiPath, func(x, y *netlink.NexthopInfo) bool {
			return x.LinkIndex == y.LinkIndex && x.Gw.Equal(y.Gw) && x.Hops == y.Hops
		})
}
