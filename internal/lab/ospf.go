package lab

import (
	"fmt"
	"strings"
)

// Routing is how the servers announce the VIP prefix to the router.
type Routing string

const (
	// RoutingBGP: one eBGP session per server, with BFD (the seed post's).
	RoutingBGP Routing = "bgp"
	// RoutingOSPF: every node in OSPF area 0 on br0, with BFD; each server
	// exports its static protocol as an external (E2) route and the router
	// merges the equal-cost ones.
	RoutingOSPF Routing = "ospf"
)

// Routings lists the routing choices, the default first.
var Routings = []Routing{RoutingBGP, RoutingOSPF}

// ParseRouting returns the routing called s ("" is BGP).
func ParseRouting(s string) (Routing, error) {
	if s == "" {
		return RoutingBGP, nil
	}
	for _, r := range Routings {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown routing %q (want bgp or ospf)", s)
}

// ospfInterface sets OSPF's timers for a lab: hello 1 s, dead 3 s (BIRD's
// defaults, 10 s and 4 x hello, are made for WANs), a retransmit of 2 s
// (the least BIRD takes; default 5) for an LSA a neighbor skipped (it drops
// a newer instance that arrives within MinLSArrival, 1 s, of the last), and
// the DR election wait at its default 4 x hello. BFD (100 ms x 5) detects a
// dead neighbor sooner anyway.
const ospfInterface = `            hello 1;
            dead 3;
            retransmit 2;
            bfd on;
`

// RouterOSPFConf is the router's bird.conf over OSPF: area 0 on br0, BFD,
// ECMP across the servers' equal external routes (merge external: else
// BIRD keeps one of them), graceful restart off (the default, aware,
// keeps a restarting neighbor's routes: a dead server's route for the
// grace period), nothing exported into OSPF, and only the external routes
// into the kernel.
func RouterOSPFConf(logFile string) string {
	var b strings.Builder
	b.WriteString(birdPreamble("router, OSPF", logFile, RouterAddr.Addr()))
	fmt.Fprintf(&b, `# ECMP: both servers' external routes merge into one multipath kernel route.
protocol kernel {
    ipv4 {
        import none;
        export where source = RTS_OSPF_EXT2;
    };
    merge paths yes;
}

protocol ospf v2 ospf_servers {
    ecmp yes;
    merge external yes;
    graceful restart no;
    ipv4 {
        import all;
        export none;
    };
    area 0 {
        interface "br0" {
%s        };
    };
}

`, ospfInterface)
	b.WriteString(bfdInterface("br0"))
	return b.String()
}

// ServerOSPFConf is a server's bird.conf over OSPF: the static protocol
// named and `disabled` as over BGP, exported into OSPF area 0 on eth0 as an
// external route; graceful restart off, BFD, lab timers.
func ServerOSPFConf(s Server, logFile string) string {
	return serverPreamble(s, ", OSPF", logFile) + fmt.Sprintf(`protocol ospf v2 ospf_router {
    graceful restart no;
    ipv4 {
        import none;
        export where proto = %q;
    };
    area 0 {
        interface "eth0" {
%s        };
    };
}

%s`, Protocol, ospfInterface, bfdInterface("eth0"))
}

// birdConf is node's bird.conf for the lab's routing.
func (l *Lab) birdConf(node, logFile string) (string, error) {
	ospf := l.cfg.Routing == RoutingOSPF
	if node == "router" {
		if ospf {
			return RouterOSPFConf(logFile), nil
		}
		return RouterBirdConfFor(l.Servers(), logFile), nil
	}
	s, err := ServerByName(node)
	if err != nil {
		return "", err
	}
	if ospf {
		return ServerOSPFConf(s, logFile), nil
	}
	return ServerBirdConf(s, logFile), nil
}
