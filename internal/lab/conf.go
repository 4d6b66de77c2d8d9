package lab

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// The seed post's addresses, plus an "internet" subnet in front of the
// router, where the clients are, and an inner tunnel subnet.
var (
	// VIP is the anycast address both servers hold on wg0.
	VIP = netip.MustParsePrefix("192.168.20.1/24")
	// VIPPrefix is the route the servers announce.
	VIPPrefix = VIP.Masked()
	// RouterAddr is the router's address on br0.
	RouterAddr = netip.MustParsePrefix("10.0.0.1/8")
	// TunnelServer is the inner tunnel address of both servers (the same
	// on both: the client reaches whichever server routing picks).
	TunnelServer = netip.MustParsePrefix("100.64.0.1/24")
	// TunnelClient is the client's inner tunnel address.
	TunnelClient = netip.MustParsePrefix("100.64.0.2/24")
	// ClientNet stands for the internet: the bridge of the inet namespace,
	// which holds the router's public address (.1) and the clients.
	ClientNet = netip.MustParsePrefix("198.18.0.0/24")
	// ClientRouterAddr is the router's public address on ClientNet, where
	// it port-forwards ListenPort to the VIP (PublicAddr).
	ClientRouterAddr = netip.MustParsePrefix("198.18.0.1/24")
	// PublicAddr is the router's public address.
	PublicAddr = ClientRouterAddr.Addr()
	// ClientAddr is the first client's address unless Up had to pick
	// another one for the ECMP hash (see Lab.ClientAddr).
	ClientAddr = netip.MustParsePrefix("198.18.0.2/24")
)

const (
	// ListenPort is the servers' WireGuard port.
	ListenPort = 51820
	// Protocol is the servers' static BIRD protocol that wgbird drives.
	Protocol = "wg_vip4"
	// RouterAS and ServerAS are the seed post's private AS numbers.
	RouterAS = 65001
	ServerAS = 65000
	// WGInterface is the WireGuard interface in every server and the client.
	WGInterface = "wg0"
	// KeepaliveSeconds is the client's PersistentKeepalive: short, so the
	// tunnel always carries traffic.
	KeepaliveSeconds = 1
	// IdleKeepaliveSeconds is the idle client's PersistentKeepalive, the
	// usual 25 s for a client behind NAT.
	IdleKeepaliveSeconds = 25
	// DirectPortBase: the router forwards public port DirectPortBase+i to
	// server i's (1-based) own address and ListenPort, so a client can be
	// pointed at one server past the VIP (as an operator would for
	// maintenance).
	DirectPortBase = 51830
	// MetricsListen is where every server's wgbird serves its metrics,
	// inside the server's namespace (each has a loopback of its own).
	MetricsListen = "127.0.0.1:9476"
)

// Server is one WireGuard server of the lab.
type Server struct {
	Name string     // "s1", "s2"
	Addr netip.Addr // on the router's br0 subnet; the router's nexthop
}

// Servers are the lab's two servers, as in the seed post.
var Servers = AllServers[:2]

// AllServers are every server a lab can have: a lab with
// Config.ServerCount 3 has s3 as well.
var AllServers = []Server{
	{Name: "s1", Addr: netip.MustParseAddr("10.0.5.1")},
	{Name: "s2", Addr: netip.MustParseAddr("10.0.7.1")},
	{Name: "s3", Addr: netip.MustParseAddr("10.0.9.1")},
}

// ServerByName returns the server called name (s1, s2 or s3).
func ServerByName(name string) (Server, error) {
	for _, s := range AllServers {
		if s.Name == name {
			return s, nil
		}
	}
	return Server{}, fmt.Errorf("unknown server %q (want s1, s2 or s3)", name)
}

// Client is one WireGuard client of the lab, on the internet side of the
// router. Its address on ClientNet is picked by Up (Lab.ClientAddr).
type Client struct {
	Name      string       // namespace suffix: "client", "client2", "idle"
	Tunnel    netip.Prefix // inner tunnel address
	Port      int          // WireGuard listen port
	Keepalive int          // PersistentKeepalive, seconds
	// Idle clients send nothing but keepalives unless a test pings from
	// them.
	Idle bool
}

// AllClients are every client a lab can have: "client" always,
// "client2" with Config.SecondClient, "idle" with Config.IdleClient.
var AllClients = []Client{
	{Name: "client", Tunnel: TunnelClient, Port: 40001, Keepalive: KeepaliveSeconds},
	{Name: "client2", Tunnel: netip.MustParsePrefix("100.64.0.3/24"), Port: 40002, Keepalive: KeepaliveSeconds},
	{Name: "idle", Tunnel: netip.MustParsePrefix("100.64.0.4/24"), Port: 40003, Keepalive: IdleKeepaliveSeconds, Idle: true},
}

// ClientByName returns the client called name.
func ClientByName(name string) (Client, error) {
	for _, c := range AllClients {
		if c.Name == name {
			return c, nil
		}
	}
	return Client{}, fmt.Errorf("unknown client %q (want client, client2 or idle)", name)
}

// bgpTimers tunes BGP for a lab, where a session that re-forms in a second
// keeps every test and the demo short. BIRD's defaults are made for the
// Internet: it waits 5 s before the first connect (connect delay time),
// 120 s between connection attempts (connect retry time) and 60-300 s
// after an error (error wait time), so a restarted server's BIRD would
// stay unreachable for minutes. Hold 3 s / keepalive 1 s are the smallest
// RFC 4271 allows; BFD (100 ms x 5) detects a dead peer sooner anyway.
const bgpTimers = `    connect delay time 1;
    connect retry time 1;
    error wait time 1, 5;
    hold time 3;
    startup hold time 3;
    keepalive time 1;
`

// bfdInterface configures BFD at 100 ms intervals, as the seed post shows
// (interval 0.100, timeout 0.500). idle tx interval speeds session set-up.
func bfdInterface(name string) string {
	return fmt.Sprintf(`protocol bfd {
    interface %q {
        min rx interval 100 ms;
        min tx interval 100 ms;
        idle tx interval 100 ms;
        multiplier 5;
    };
}
`, name)
}

// RouterBirdConf is the router's bird.conf for the two servers of Servers.
func RouterBirdConf(logFile string) string { return RouterBirdConfFor(Servers, logFile) }

// RouterBirdConfFor is the router's bird.conf: the seed post's, with `bfd on`
// for every server (`bfd graceful` would turn a dead server into a
// graceful restart that keeps its route as stale), graceful restart off
// for the same reason, nothing exported back over BGP, and lab timers.
func RouterBirdConfFor(servers []Server, logFile string) string {
	var b strings.Builder
	b.WriteString(birdPreamble("router", logFile, RouterAddr.Addr()))
	fmt.Fprintf(&b, `# ECMP: both servers' routes merge into one multipath kernel route.
protocol kernel {
    ipv4 {
        import none;
        export where source = RTS_BGP;
    };
    merge paths yes;
}

template bgp server {
    local %s as %d;
    ipv4 {
        import all;
        export none;
    };
    bfd on;
    graceful restart off;
%s}

`, RouterAddr.Addr(), RouterAS, bgpTimers)
	for _, s := range servers {
		fmt.Fprintf(&b, "protocol bgp bgp_%s from server {\n    neighbor %s as %d;\n}\n\n", s.Name, s.Addr, ServerAS)
	}
	b.WriteString(bfdInterface("br0"))
	return b.String()
}

// ServerBirdConf is a server's bird.conf: the seed post's, with the static
// protocol named and `disabled`, so a (re)starting BIRD announces nothing
// until wgbird has verified WireGuard; `bfd on`, graceful restart off and
// lab timers.
func ServerBirdConf(s Server, logFile string) string {
	return serverPreamble(s, "", logFile) + fmt.Sprintf(`protocol bgp bgp_router {
    local %s as %d;
    neighbor %s as %d;
    ipv4 {
        import none;
        export where source = RTS_STATIC;
    };
    bfd on;
    graceful restart off;
%s}

%s`, s.Addr, ServerAS, RouterAddr.Addr(), RouterAS, bgpTimers, bfdInterface("eth0"))
}

// birdPreamble starts every node's bird.conf: a title, the log, the
// router id, the device protocol and no direct routes.
func birdPreamble(title, logFile string, routerID netip.Addr) string {
	return fmt.Sprintf(`# wgbird lab: %s (generated)
log %q all;
router id %s;

protocol device {
    scan time 10;
}

protocol direct {
    disabled;
}

`, title, logFile, routerID)
}

// serverPreamble is what a server's bird.conf has whatever the routing:
// the preamble, no kernel routes, and the static protocol wgbird drives,
// `disabled` so that a (re)starting BIRD announces nothing until wgbird
// has verified WireGuard. routing is added to the title ("", ", OSPF").
func serverPreamble(s Server, routing, logFile string) string {
	return birdPreamble("server "+s.Name+routing, logFile, s.Addr) + fmt.Sprintf(`protocol kernel {
    ipv4 {
        import none;
        export none;
    };
}

# Enabled and disabled by wgbird.
protocol static %s {
    disabled;
    ipv4;
    route %s via %q;
}

`, Protocol, VIPPrefix, WGInterface)
}

// Thresholds are wgbird's check interval and damping; zero values leave
// wgbird's defaults (1 s, rise 3, fall 2).
type Thresholds struct {
	Interval time.Duration
	Rise     int
	Fall     int
}

// Effective returns t with wgbird's defaults filled in.
func (t Thresholds) Effective() Thresholds {
	if t.Interval <= 0 {
		t.Interval = time.Second
	}
	if t.Rise <= 0 {
		t.Rise = 3
	}
	if t.Fall <= 0 {
		t.Fall = 2
	}
	return t
}

// WgbirdConf is a server's wgbird.toml, with the metrics endpoint on
// MetricsListen and without the probe (see ProbeTable). Only non-default
// thresholds are written, and no listen_port, as in examples/wgbird.toml:
// the port-change fault is caught by the default (the port seen at the
// first healthy read).
func WgbirdConf(dir string, t Thresholds) string {
	var b strings.Builder
	fmt.Fprintf(&b, `[bird]
socket = %q

[control]
socket = %q
runtime_dir = %q
state_dir = %q

[metrics]
listen = %q

[[service]]
interface = %q
vips = [%q]
protocols = [%q]
`, dir+"/bird.ctl", dir+"/wgbird.sock", dir+"/run", dir+"/state", MetricsListen, WGInterface, VIP, Protocol)
	// The anycast group: every server's address (a third that is not up
	// is a silent member), the one line the seed set-up adds for session
	// takeover.
	members := make([]string, len(AllServers))
	for i, s := range AllServers {
		members[i] = fmt.Sprintf("%q", s.Addr.String())
	}
	fmt.Fprintf(&b, "group = [%s]\n", strings.Join(members, ", "))
	b.WriteString(t.TOML())
	return b.String()
}

// wgPeer is one [Peer] of a wg(8) config file.
type wgPeer struct {
	PublicKey  string
	AllowedIPs string
	Endpoint   string
	Keepalive  int
}

// WGConf renders a wg(8) configuration file (not wg-quick's: no Address).
func wgConf(privateKey string, listenPort int, peers ...wgPeer) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[Interface]\nPrivateKey = %s\n", privateKey)
	if listenPort > 0 {
		fmt.Fprintf(&b, "ListenPort = %d\n", listenPort)
	}
	for _, p := range peers {
		fmt.Fprintf(&b, "\n[Peer]\nPublicKey = %s\nAllowedIPs = %s\n", p.PublicKey, p.AllowedIPs)
		if p.Endpoint != "" {
			fmt.Fprintf(&b, "Endpoint = %s\n", p.Endpoint)
		}
		if p.Keepalive > 0 {
			fmt.Fprintf(&b, "PersistentKeepalive = %d\n", p.Keepalive)
		}
	}
	return b.String()
}

// TOML returns the [[service]] keys of the thresholds that are set, one a
// line, for the lab's and the bench's wgbird configs.
func (t Thresholds) TOML() string {
	var b strings.Builder
	if t.Interval > 0 {
		fmt.Fprintf(&b, "interval = %q\n", t.Interval)
	}
	if t.Rise > 0 {
		fmt.Fprintf(&b, "rise = %d\n", t.Rise)
	}
	if t.Fall > 0 {
		fmt.Fprintf(&b, "fall = %d\n", t.Fall)
	}
	return b.String()
}
