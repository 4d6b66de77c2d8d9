package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/wgbird/wgbird/internal/labjudge"
)

// placeFile keeps the clients' placement of a lab for later invocations.
const placeFile = "clients.json"

// candidates is how many addresses of ClientNet placeClients tries.
const candidates = 120

// placeClients picks each client's address on ClientNet so that the
// router's ECMP hash (L3: source and destination address) sends "client"
// and "idle" to s1 and "client2" to s2, and, with three servers, keeps
// each there while s3 is withdrawn. It asks the router's kernel, with
// temporary multipath routes installed before BIRD runs, which nexthop it
// picks for a packet from each candidate address arriving on wan: the same
// lookup a forwarded packet gets after the DNAT.
func (l *Lab) placeClients(ctx context.Context) (map[string]Placement, error) {
	h, closeH, err := l.routerHandle()
	if err != nil {
		return nil, err
	}
	defer closeH()
	servers := l.Servers()
	addrs := make([]netip.Addr, 0, candidates)
	a := ClientAddr.Addr()
	for range candidates {
		addrs = append(addrs, a)
		a = a.Next()
	}
	// all[i] is the server the candidate addrs[i] goes to with every
	// server routed; noS3[i] with s1 and s2 only (three servers).
	all, err := hashChoices(h, servers, addrs)
	if err != nil {
		return nil, err
	}
	noS3 := all
	if len(servers) > 2 {
		if noS3, err = hashChoices(h, servers[:2], addrs); err != nil {
			return nil, err
		}
	}
	placed := make(map[string]Placement)
	used := make(map[int]bool)
	for _, c := range l.Clients() {
		// client and idle on s1, client2 on s2; s3 keeps none, and each
		// stays put while s3 is withdrawn.
		want := servers[0].Name
		if c.Name == "client2" {
			want = servers[1].Name
		}
		pick := -1
		for i := range addrs {
			if !used[i] && all[i] == want && noS3[i] == want {
				pick = i
				break
			}
		}
		if pick < 0 {
			l.log.Warn("no client address that the router's hash sends where wanted", "client", c.Name, "server", want)
			for i := range addrs {
				if !used[i] {
					pick = i
					break
				}
			}
		}
		placed[c.Name] = Placement{Addr: addrs[pick], Server: all[pick]}
		used[pick] = true
	}
	for _, c := range l.Clients() {
		l.log.Debug("client placed", "client", c.Name, "addr", placed[c.Name].Addr, "server", placed[c.Name].Server)
	}
	return placed, ctx.Err()
}

// routerHandle opens netlink in the router namespace.
func (l *Lab) routerHandle() (*netlink.Handle, func(), error) {
	ns, err := netns.GetFromName(l.NS("router"))
	if err != nil {
		return nil, nil, fmt.Errorf("opening router namespace: %w", err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, nil, fmt.Errorf("opening netlink in router namespace: %w", err)
	}
	if err := h.SetSocketTimeout(cmdTimeout); err != nil {
		h.Close()
		return nil, nil, fmt.Errorf("setting netlink timeout: %w", err)
	}
	return h, h.Close, nil
}

// hashChoices installs a multipath route to VIPPrefix via set in the
// router's main table, asks which server each of addrs goes to, and
// removes the route.
func hashChoices(h *netlink.Handle, set []Server, addrs []netip.Addr) ([]string, error) {
	br, err := h.LinkByName("br0")
	if err != nil {
		return nil, fmt.Errorf("finding the router's br0: %w", err)
	}
	route := &netlink.Route{Dst: labjudge.IPNet(VIPPrefix), Table: unix.RT_TABLE_MAIN}
	for _, s := range set {
		route.MultiPath = append(route.MultiPath, &netlink.NexthopInfo{LinkIndex: br.Attrs().Index, Gw: s.Addr.AsSlice()})
	}
	if err := h.RouteReplace(route); err != nil {
		return nil, fmt.Errorf("installing the placement route: %w", err)
	}
	defer h.RouteDel(route)
	out := make([]string, len(addrs))
	for i, a := range addrs {
		name, err := routerChoice(h, a)
		if err != nil {
			return nil, err
		}
		out[i] = name
	}
	return out, nil
}

// routerChoice returns the server the router's table sends a packet from
// src (arriving from the internet) to the VIP to; "" when it has no route.
func routerChoice(h *netlink.Handle, src netip.Addr) (string, error) {
	rs, err := h.RouteGetWithOptions(net.IP(VIP.Addr().AsSlice()), &netlink.RouteGetOptions{Iif: "wan", SrcAddr: src.AsSlice()})
	if errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.EHOSTUNREACH) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("asking the router's route from %s to the VIP: %w", src, err)
	}
	for _, r := range rs {
		gw, ok := netip.AddrFromSlice(r.Gw)
		if !ok {
			continue
		}
		for _, s := range AllServers {
			if s.Addr == gw.Unmap() {
				return s.Name, nil
			}
		}
	}
	return "", nil
}

func (l *Lab) savePlacement() error {
	b, err := json.MarshalIndent(l.placed, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the clients' placement: %w", err)
	}
	if err := os.WriteFile(l.path("", placeFile), b, 0o644); err != nil {
		return fmt.Errorf("writing the clients' placement: %w", err)
	}
	return nil
}

func (l *Lab) loadPlacement() error {
	b, err := os.ReadFile(l.path("", placeFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil // a lab from before placement: ClientAddr
	}
	if err != nil {
		return fmt.Errorf("reading the clients' placement: %w", err)
	}
	if err := json.Unmarshal(b, &l.placed); err != nil {
		return fmt.Errorf("reading the clients' placement %s: %w", l.path("", placeFile), err)
	}
	return nil
}

// ClientAddr returns the address of the client called name on ClientNet.
func (l *Lab) ClientAddr(name string) netip.Addr {
	if p, ok := l.placed[name]; ok {
		return p.Addr
	}
	return ClientAddr.Addr()
}

// HomeServer returns the server the router's ECMP hash sends the client
// called name to while every server is routed (Up picked the clients'
// addresses for it).
func (l *Lab) HomeServer(name string) (Server, error) {
	p, ok := l.placed[name]
	if !ok {
		return Server{}, fmt.Errorf("client %s was not placed by this lab", name)
	}
	return ServerByName(p.Server)
}

// RoutedServer returns the server the router's table sends the client
// called name to now (the kernel's own lookup, the router's current
// nexthops); an error when the router has no route to the VIP.
func (l *Lab) RoutedServer(name string) (Server, error) {
	h, closeH, err := l.routerHandle()
	if err != nil {
		return Server{}, err
	}
	defer closeH()
	s, err := routerChoice(h, l.ClientAddr(name))
	if err != nil {
		return Server{}, err
	}
	if s == "" {
		return Server{}, fmt.Errorf("the router has no route from %s to the VIP", name)
	}
	return ServerByName(s)
}
