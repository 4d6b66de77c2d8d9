package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"

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
	servers := l.Servers()
	addrs := make([]netip.Addr, 0, candidates)
	a := ClientAddr.Addr()
	for range candidates {
		addrs = append(addrs, a)
		a = a.Next()
	}
	// all[i] is the server the candidate addrs[i] goes to with every
	// server routed; noS3[i] with s1 and s2 only (three servers).
	all, err := l.hashChoices(servers, addrs)
	if err != nil {
		return nil, err
	}
	noS3 := all
	if len(servers) > 2 {
		if noS3, err = l.hashChoices(servers[:2], addrs); err != nil {
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

// hashChoices returns the server the router's ECMP hash sends a packet
// from each of addrs (arriving from the internet) to the VIP to, with a
// multipath route via set installed for the question (labjudge.Choices).
func (l *Lab) hashChoices(set []Server, addrs []netip.Addr) ([]string, error) {
	gws := make([]netip.Addr, len(set))
	for i, s := range set {
		gws[i] = s.Addr
	}
	via, err := labjudge.Choices(l.NS("router"), VIPPrefix, "br0", gws, VIP.Addr(), "wan", addrs)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(via))
	for i, gw := range via {
		out[i] = serverAt(gw)
	}
	return out, nil
}

// serverAt returns the name of the server with address a, "" for none.
func serverAt(a netip.Addr) string {
	for _, s := range AllServers {
		if s.Addr == a {
			return s.Name
		}
	}
	return ""
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
	gw, err := labjudge.RoutedVia(l.NS("router"), VIP.Addr(), "wan", l.ClientAddr(name))
	if err != nil {
		return Server{}, err
	}
	s := serverAt(gw)
	if s == "" {
		return Server{}, fmt.Errorf("the router has no route from %s to the VIP", name)
	}
	return ServerByName(s)
}
