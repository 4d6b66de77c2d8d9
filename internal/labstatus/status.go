package labstatus

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/wgbird/wgbird/internal/lab"
	"github.com/wgbird/wgbird/internal/labjudge"
	"github.com/wgbird/wgbird/internal/labproc"
)

// ServerStatus is what the lab knows about one server.
type ServerStatus struct {
	Name string
	Addr netip.Addr
	// Routed: the router's table has this server's nexthop.
	Routed bool
	// WireGuardGo: "running", "stopped (SIGSTOP)" or "not running".
	WireGuardGo string
	// Bird: BIRD's `show protocols` line of the static protocol.
	Bird string
	// Wgbird: `wgbird status --json`, or WgbirdErr why not.
	Wgbird    json.RawMessage `json:",omitempty"`
	WgbirdErr string          `json:",omitempty"`
}

// Status is a snapshot of the lab.
type Status struct {
	Nexthops    []netip.Addr
	NexthopsErr string `json:",omitempty"`
	Servers     []ServerStatus
	// ClientHandshake: the client tunnel's latest handshake (zero: none).
	ClientHandshake time.Time
	ClientErr       string `json:",omitempty"`
	// Clients: every client of the lab, "client" first.
	Clients []ClientStatus
}

// ClientStatus is what the lab knows about one client, from the client's
// side and the router's.
type ClientStatus struct {
	Name string
	Addr netip.Addr
	// RoutedTo: the server the router's table sends its flow to now.
	RoutedTo string `json:",omitempty"`
	// Endpoint: the client's endpoint for the server peer (it should be
	// Want).
	Endpoint netip.AddrPort
	Want     netip.AddrPort
	// Handshake: the latest handshake (zero: none).
	Handshake time.Time
	Err       string `json:",omitempty"`
}

// Read collects the lab's router's nexthops, each server's state and each
// client's. Parts that cannot be read say why.
func Read(ctx context.Context, l *lab.Lab) Status {
	var st Status
	nh, err := l.Nexthops()
	if err != nil {
		st.NexthopsErr = err.Error()
	}
	st.Nexthops = nh
	for _, s := range l.Servers() {
		ss := ServerStatus{Name: s.Name, Addr: s.Addr, Routed: slices.Contains(nh, s.Addr)}
		switch pid := l.WireGuardGoPid(s.Name); {
		case pid == 0:
			ss.WireGuardGo = "not running"
		case labproc.ReadState(pid).Stopped:
			ss.WireGuardGo = fmt.Sprintf("stopped (SIGSTOP), pid %d", pid)
		default:
			ss.WireGuardGo = fmt.Sprintf("running, pid %d", pid)
		}
		if line, err := l.BirdProtocol(ctx, s.Name); err != nil {
			ss.Bird = "unreachable: " + err.Error()
		} else {
			ss.Bird = line
		}
		if l.Config().Wgbird == "" {
			ss.WgbirdErr = "the lab runs no wgbird"
		} else if raw, err := l.WgbirdStatus(ctx, s.Name); err != nil {
			ss.WgbirdErr = err.Error()
		} else {
			ss.Wgbird = raw
		}
		st.Servers = append(st.Servers, ss)
	}
	for _, c := range l.Clients() {
		cs := ClientStatus{Name: c.Name, Addr: l.ClientAddr(c.Name), Want: l.Endpoint()}
		if s, err := l.RoutedServer(c.Name); err == nil {
			cs.RoutedTo = s.Name
		}
		var errs []string
		if ep, err := l.ClientEndpoint(ctx, c.Name); err != nil {
			errs = append(errs, err.Error())
		} else {
			cs.Endpoint = ep
		}
		if hs, err := l.ClientHandshake(ctx, c.Name); err != nil {
			errs = append(errs, err.Error())
		} else {
			cs.Handshake = hs
		}
		cs.Err = strings.Join(errs, "; ")
		st.Clients = append(st.Clients, cs)
	}
	if len(st.Clients) > 0 {
		st.ClientHandshake, st.ClientErr = st.Clients[0].Handshake, st.Clients[0].Err
	}
	return st
}

// Write prints the status for a person.
func (s Status) Write(w io.Writer) {
	if s.NexthopsErr != "" {
		fmt.Fprintf(w, "router: %s via ? (%s)\n", lab.VIPPrefix, s.NexthopsErr)
	} else {
		fmt.Fprintf(w, "router: %s via %s\n", lab.VIPPrefix, labjudge.FormatNexthops(s.Nexthops))
	}
	for _, ss := range s.Servers {
		routed := "not routed"
		if ss.Routed {
			routed = "routed"
		}
		fmt.Fprintf(w, "%s (%s): %s\n", ss.Name, ss.Addr, routed)
		fmt.Fprintf(w, "  wireguard-go: %s\n", ss.WireGuardGo)
		fmt.Fprintf(w, "  bird: %s\n", ss.Bird)
		if ss.WgbirdErr != "" {
			fmt.Fprintf(w, "  wgbird: %s\n", ss.WgbirdErr)
		} else {
			for _, line := range wgbirdSummary(ss.Wgbird) {
				fmt.Fprintf(w, "  wgbird: %s\n", line)
			}
		}
	}
	for _, c := range s.Clients {
		to := "no route"
		if c.RoutedTo != "" {
			to = "routed to " + c.RoutedTo
		}
		fmt.Fprintf(w, "%s (%s): %s\n", c.Name, c.Addr, to)
		if c.Err != "" {
			fmt.Fprintf(w, "  tunnel unreadable: %s\n", c.Err)
			continue
		}
		ep := c.Endpoint.String()
		if c.Endpoint != c.Want {
			ep += fmt.Sprintf(" (NOT %s: pinned off the service address)", c.Want)
		}
		fmt.Fprintf(w, "  endpoint: %s\n", ep)
		if c.Handshake.IsZero() {
			fmt.Fprintf(w, "  no handshake yet\n")
		} else {
			fmt.Fprintf(w, "  latest handshake %s ago\n", time.Since(c.Handshake).Round(time.Second))
		}
	}
}

// RouterRoute returns `ip route show VIPPrefix` in the lab's router
// namespace, as a person would type it.
func RouterRoute(ctx context.Context, l *lab.Lab) (string, error) {
	return labproc.Run(ctx, "ip", "-n", l.NS("router"), "route", "show", lab.VIPPrefix.String())
}

// wgbirdSummary turns `wgbird status --json` into one line per service:
// "wg0: announced (3 healthy in a row)". Only a few fields are read, so
// additions to wgbird's JSON do not matter; unreadable JSON is shown raw.
func wgbirdSummary(raw json.RawMessage) []string {
	var st struct {
		Services []struct {
			Name    string `json:"name"`
			State   string `json:"state"`
			Reason  string `json:"reason"`
			Healthy bool   `json:"healthy"`
		} `json:"services"`
	}
	if err := json.Unmarshal(raw, &st); err != nil || len(st.Services) == 0 {
		return []string{string(raw)}
	}
	var lines []string
	for _, s := range st.Services {
		health := "healthy"
		if !s.Healthy {
			health = "unhealthy"
		}
		lines = append(lines, fmt.Sprintf("%s: %s (%s), %s", s.Name, s.State, s.Reason, health))
	}
	return lines
}
