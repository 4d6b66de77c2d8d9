package labjudge

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Mapping is one UDP connection-tracking entry of the router between a
// client on the internet side and a server: the home router's NAT
// mapping, read through netlink.
type Mapping struct {
	// Client is the client's address and port.
	Client netip.AddrPort
	// Public is the router's address and port the client talks to (and
	// sees the server's packets come from).
	Public netip.AddrPort
	// Inside is the server's side: the VIP or a server's own address.
	Inside netip.AddrPort
	// FromInside: the server's packet made the mapping (a masqueraded
	// server-initiated flow), not the client's.
	FromInside bool
	// Timeout is how long the router keeps the mapping without another
	// packet.
	Timeout time.Duration
}

func (m Mapping) String() string {
	dir := "client→"
	if m.FromInside {
		dir = "server→"
	}
	return fmt.Sprintf("%s %s ⇄ %s ⇄ %s (%s left)", dir, m.Client, m.Public, m.Inside, m.Timeout)
}

// Mappings returns the UDP connection-tracking entries of the router's
// network namespace ns between a client on internet (other than public,
// the router's own address there) and the inside, sorted by client.
func Mappings(ns string, internet netip.Prefix, public netip.Addr) ([]Mapping, error) {
	h, err := handle(ns, unix.NETLINK_NETFILTER, "netfilter netlink in the router namespace")
	if err != nil {
		return nil, err
	}
	defer h.Close()
	flows, err := h.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
	if err != nil {
		return nil, fmt.Errorf("listing the router's connection tracking: %w", err)
	}
	var out []Mapping
	for _, f := range flows {
		if m, ok := mappingOf(f, internet, public); ok {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b Mapping) int { return a.Client.Compare(b.Client) })
	return out, nil
}

// mappingOf turns a conntrack flow into a Mapping: a UDP flow with one end
// on internet other than the router itself (public).
func mappingOf(f *netlink.ConntrackFlow, internet netip.Prefix, public netip.Addr) (Mapping, bool) {
	if f.Forward.Protocol != unix.IPPROTO_UDP {
		return Mapping{}, false
	}
	ap := func(ip net.IP, port uint16) netip.AddrPort {
		a, _ := netip.AddrFromSlice(ip)
		return netip.AddrPortFrom(a.Unmap(), port)
	}
	fs, fd := ap(f.Forward.SrcIP, f.Forward.SrcPort), ap(f.Forward.DstIP, f.Forward.DstPort)
	rs, rd := ap(f.Reverse.SrcIP, f.Reverse.SrcPort), ap(f.Reverse.DstIP, f.Reverse.DstPort)
	onNet := func(a netip.AddrPort) bool { return internet.Contains(a.Addr()) && a.Addr() != public }
	m := Mapping{Timeout: time.Duration(f.TimeOut) * time.Second}
	switch {
	case onNet(fs): // the client's packet came first: DNAT (or routed)
		m.Client, m.Public, m.Inside = fs, fd, rs
	case onNet(fd): // a server's packet came first: masqueraded
		m.Client, m.Inside, m.Public, m.FromInside = fd, fs, rd, true
	default:
		return Mapping{}, false
	}
	return m, true
}

// ForgetMappings deletes the connection-tracking entries of the router's
// network namespace ns from or to client (named name in errors), as their
// timeout would: its next packet, or a server's, makes a new mapping.
func ForgetMappings(ns, name string, client netip.Addr) error {
	h, err := handle(ns, unix.NETLINK_NETFILTER, "netfilter netlink in the router namespace")
	if err != nil {
		return err
	}
	defer h.Close()
	addr := net.IP(client.AsSlice())
	for _, dir := range []netlink.ConntrackFilterType{netlink.ConntrackOrigSrcIP, netlink.ConntrackOrigDstIP} {
		f := &netlink.ConntrackFilter{}
		if err := f.AddIP(dir, addr); err != nil {
			return fmt.Errorf("deleting the mappings of %s: %w", name, err)
		}
		if _, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f); err != nil {
			return fmt.Errorf("deleting the mappings of %s: %w", name, err)
		}
	}
	return nil
}
