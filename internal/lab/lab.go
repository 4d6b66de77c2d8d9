package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/labproc"
	"github.com/wgbird/wgbird/internal/probe"
)

// DefaultDir is where the lab keeps its state unless told otherwise.
const DefaultDir = "/run/wgbird-lab"

// DefaultPrefix names the lab's namespaces: PREFIX-router, PREFIX-s1, ...
const DefaultPrefix = "wgbl"

// markerFile marks a directory as a lab dir, so Down never removes
// anything else.
const markerFile = ".wgbird-lab"

// stateFile keeps the Config of a running lab for later invocations.
const stateFile = "lab.json"

// Config describes a lab.
type Config struct {
	// Dir holds configs, sockets, pid files and logs (DefaultDir if empty).
	Dir string
	// Prefix names namespaces (DefaultPrefix if empty).
	Prefix string
	// Wgbird is the path of the wgbird binary to run on each server; empty
	// runs none (the static protocols then stay disabled).
	Wgbird string
	// Bird is the bird binary every node runs; birdc is the one next to it.
	// Empty: bird and birdc from PATH. (/opt/bird-3.3.2/sbin/bird runs a
	// BIRD built by .ci/build-bird.)
	Bird string `json:",omitempty"`
	// Routing is how the servers announce the VIP prefix: RoutingBGP (the
	// default, also when empty) or RoutingOSPF.
	Routing Routing `json:",omitempty"`
	// Thresholds are written to each wgbird's config.
	Thresholds Thresholds
	// NoProbe runs every wgbird without its active handshake probe: the
	// servers then list no probe peer, and KeyRotate goes unnoticed.
	NoProbe bool `json:",omitempty"`
	// Routed turns the home network off: the router routes the clients
	// straight to the VIP (their endpoint) instead of port-forwarding its
	// public address to it. The default is the seed post's home network:
	// the router DNATs PublicAddr:ListenPort to the VIP, masquerades what
	// else the servers send to the internet and drops the rest inbound.
	Routed bool `json:",omitempty"`
	// ServerCount is the number of servers, 2 (default) or 3.
	ServerCount int `json:",omitempty"`
	// SecondClient adds "client2", an active client that the router's
	// ECMP hash sends to another server than "client".
	SecondClient bool `json:",omitempty"`
	// IdleClient adds "idle", a client that sends only keepalives
	// (IdleKeepaliveSeconds).
	IdleClient bool `json:",omitempty"`
	// KernelWireGuard gives every node a kernel WireGuard wg0 (ip link add
	// type wireguard) instead of wireguard-go; the kill and hang modes,
	// which act on the wireguard-go process, are refused.
	KernelWireGuard bool `json:",omitempty"`
	// WgbirdExtra is TOML appended to every server's wgbird.toml, after
	// its service: the soak adds an exec check and a hook (labsoak.WgbirdExtra)
	// so that their runs are part of what it measures.
	WgbirdExtra string `json:",omitempty"`
	// NoTakeover runs every wgbird without client continuity
	// (`takeover = false`, `vip_source = false`): wgbird as before issue
	// 13, the "takeover off" side of the client measurements.
	NoTakeover bool `json:",omitempty"`
	// Log receives what the lab does (discarded if nil).
	Log *slog.Logger `json:"-"`
}

func (c Config) withDefaults() Config {
	if c.Dir == "" {
		c.Dir = DefaultDir
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.ServerCount == 0 {
		c.ServerCount = 2
	}
	if c.Routing == "" {
		c.Routing = RoutingBGP
	}
	return c
}

func (c Config) check() error {
	if c.ServerCount < 2 || c.ServerCount > len(AllServers) {
		return fmt.Errorf("lab config: %d servers (want 2 or 3)", c.ServerCount)
	}
	return nil
}

// Lab is a lab that is up (or was, for Down).
type Lab struct {
	cfg Config
	log *slog.Logger
	// placed are the clients' addresses on ClientNet and the server the
	// router's hash sends each to with every server routed (placeFile).
	placed map[string]Placement
}

// Placement is where Up put a client: its address on ClientNet and the
// server the router's ECMP hash sends its flow to while every server is
// routed.
type Placement struct {
	Addr   netip.Addr
	Server string
}

// Config returns the lab's configuration with defaults filled in.
func (l *Lab) Config() Config { return l.cfg }

// Dir returns the lab directory.
func (l *Lab) Dir() string { return l.cfg.Dir }

// NS returns the namespace name of a node: "router", "s1", "s2", "client".
func (l *Lab) NS(node string) string { return l.cfg.Prefix + "-" + node }

// allNodes are all namespaces any lab can have, for Down.
var allNodes = []string{"router", "inet", "s1", "s2", "s3", "client", "client2", "idle"}

// nodes are the namespaces of this lab.
func (l *Lab) nodes() []string {
	n := []string{"router", "inet"}
	for _, s := range l.Servers() {
		n = append(n, s.Name)
	}
	for _, c := range l.Clients() {
		n = append(n, c.Name)
	}
	return n
}

// Servers returns the lab's servers: s1, s2 and, with ServerCount 3, s3.
func (l *Lab) Servers() []Server { return AllServers[:l.cfg.ServerCount] }

// Clients returns the lab's clients: "client", then "client2" and "idle"
// if configured.
func (l *Lab) Clients() []Client {
	cs := []Client{AllClients[0]}
	if l.cfg.SecondClient {
		cs = append(cs, AllClients[1])
	}
	if l.cfg.IdleClient {
		cs = append(cs, AllClients[2])
	}
	return cs
}

// isClient reports whether node is one of the lab's clients.
func (l *Lab) isClient(node string) bool {
	_, err := ClientByName(node)
	return err == nil
}

// Endpoint returns the address and port the clients are configured with:
// the router's public address and port behind the home network's NAT, the
// VIP itself in the routed variant. A client's endpoint for the server
// peer must stay this.
func (l *Lab) Endpoint() netip.AddrPort {
	if l.cfg.Routed {
		return netip.AddrPortFrom(VIP.Addr(), ListenPort)
	}
	return netip.AddrPortFrom(PublicAddr, ListenPort)
}

// DirectEndpoint returns where a client reaches server's own address past
// the VIP: the router's public port forwarded to that server (NAT), or
// the server's address (routed).
func (l *Lab) DirectEndpoint(s Server) netip.AddrPort {
	if l.cfg.Routed {
		return netip.AddrPortFrom(s.Addr, ListenPort)
	}
	for i, x := range AllServers {
		if x.Name == s.Name {
			return netip.AddrPortFrom(PublicAddr, uint16(DirectPortBase+i+1))
		}
	}
	return netip.AddrPort{}
}

// path returns a file of node's directory.
func (l *Lab) path(node, file string) string { return filepath.Join(l.cfg.Dir, node, file) }

// WgbirdLog returns the path of a server's wgbird log.
func (l *Lab) WgbirdLog(server string) string { return l.path(server, "wgbird.log") }

// BirdSocket returns the path of a node's BIRD control socket.
func (l *Lab) BirdSocket(node string) string { return l.path(node, "bird.ctl") }

// ControlSocket returns the path of a server's wgbird control socket.
func (l *Lab) ControlSocket(server string) string { return l.path(server, "wgbird.sock") }

// New returns the handle of a lab described by cfg, without touching the
// system.
func New(cfg Config) *Lab {
	cfg = cfg.withDefaults()
	return &Lab{cfg: cfg, log: cfg.Log}
}

// Open returns the lab that `up` left in dir, with the configuration it
// was brought up with.
func Open(dir string, log *slog.Logger) (*Lab, error) {
	if dir == "" {
		dir = DefaultDir
	}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no lab in %s (run up first)", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("reading lab state: %w", err)
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("reading lab state %s: %w", filepath.Join(dir, stateFile), err)
	}
	cfg.Dir = dir
	cfg.Log = log
	l := New(cfg)
	if err := l.loadPlacement(); err != nil {
		return nil, err
	}
	return l, nil
}

// Up brings the lab up: it first tears down whatever a previous (perhaps
// killed) lab with the same prefix and dir left behind, then builds the
// namespaces and links, starts BIRD everywhere, wireguard-go on the
// servers and the client, and wgbird on the servers. It does not wait for
// BGP or the routes: see WaitReady. On error the half-built lab is torn
// down.
func Up(ctx context.Context, cfg Config) (_ *Lab, err error) {
	// The deferred teardown below needs the lab even when a return sets
	// the result to nil, so it is not the named result.
	l := New(cfg)
	if err := l.cfg.check(); err != nil {
		return nil, err
	}
	if l.cfg.Wgbird != "" {
		abs, err := filepath.Abs(l.cfg.Wgbird)
		if err != nil {
			return nil, fmt.Errorf("resolving wgbird path: %w", err)
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("wgbird binary: %w", err)
		}
		l.cfg.Wgbird = abs
	}
	if l.cfg.Bird != "" {
		abs, err := filepath.Abs(l.cfg.Bird)
		if err != nil {
			return nil, fmt.Errorf("resolving bird path: %w", err)
		}
		l.cfg.Bird = abs
	}
	birdVersion, err := l.birdVersion(ctx)
	if err != nil {
		return nil, err
	}
	l.log.Info("BIRD", "bird", l.birdBin(), "version", birdVersion)
	if err := l.Down(ctx); err != nil {
		return nil, fmt.Errorf("cleaning up the previous lab: %w", err)
	}
	defer func() {
		if err != nil {
			if derr := l.Down(context.WithoutCancel(ctx)); derr != nil {
				l.log.Warn("tearing down the failed lab", "err", derr)
			}
		}
	}()
	start := time.Now()
	if err := l.makeDirs(); err != nil {
		return nil, err
	}
	if err := l.makeKeys(); err != nil {
		return nil, err
	}
	if err := l.buildTopology(ctx); err != nil {
		return nil, err
	}
	l.log.Info("topology built", "took", time.Since(start).Round(time.Millisecond))
	if err := l.startBird(ctx, "router"); err != nil {
		return nil, err
	}
	for _, s := range l.Servers() {
		if err := l.startBird(ctx, s.Name); err != nil {
			return nil, err
		}
		if err := l.ensureWireGuard(ctx, s.Name); err != nil {
			return nil, err
		}
	}
	for _, c := range l.Clients() {
		if err := l.ensureWireGuard(ctx, c.Name); err != nil {
			return nil, err
		}
	}
	for _, s := range l.Servers() {
		if err := l.ensureWgbird(ctx, s.Name); err != nil {
			return nil, err
		}
	}
	l.log.Info("lab up", "dir", l.cfg.Dir, "took", time.Since(start).Round(time.Millisecond))
	return l, nil
}

func (l *Lab) makeDirs() error {
	if err := os.MkdirAll(l.cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("creating lab dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(l.cfg.Dir, markerFile), []byte("wgbird lab; removed by `wgbird-lab down`\n"), 0o644); err != nil {
		return fmt.Errorf("marking lab dir: %w", err)
	}
	for _, n := range l.nodes() {
		for _, sub := range []string{"", "wireguard", "run", "state"} {
			if err := os.MkdirAll(filepath.Join(l.cfg.Dir, n, sub), 0o700); err != nil {
				return fmt.Errorf("creating lab dir: %w", err)
			}
		}
	}
	b, err := json.MarshalIndent(l.cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding lab state: %w", err)
	}
	if err := os.WriteFile(filepath.Join(l.cfg.Dir, stateFile), b, 0o644); err != nil {
		return fmt.Errorf("writing lab state: %w", err)
	}
	return nil
}

// makeKeys writes the servers' shared key pair (an anycast endpoint needs
// one identity), each client's, each server's probe key (unless NoProbe),
// and the wg(8) configs built from them: a server lists every client and
// its own wgbird's probe as peers; a client lists the servers' key at
// Endpoint.
func (l *Lab) makeKeys() error {
	server, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		return fmt.Errorf("generating server key: %w", err)
	}
	var peers []wgPeer
	for _, c := range l.Clients() {
		key, err := wgtypes.GeneratePrivateKey()
		if err != nil {
			return fmt.Errorf("generating the key of %s: %w", c.Name, err)
		}
		peers = append(peers, wgPeer{PublicKey: key.PublicKey().String(), AllowedIPs: netipHost(c.Tunnel)})
		cconf := wgConf(key.String(), c.Port, wgPeer{
			PublicKey:  server.PublicKey().String(),
			AllowedIPs: netipHost(TunnelServer),
			Endpoint:   l.Endpoint().String(),
			Keepalive:  c.Keepalive,
		})
		if err := os.WriteFile(l.path(c.Name, "wg0.conf"), []byte(cconf), 0o600); err != nil {
			return fmt.Errorf("writing wg config: %w", err)
		}
		if err := os.WriteFile(l.path(c.Name, "private.key"), []byte(key.String()+"\n"), 0o600); err != nil {
			return fmt.Errorf("writing key: %w", err)
		}
	}
	sconf := wgConf(server.String(), ListenPort, peers...)
	for _, s := range l.Servers() {
		conf := sconf
		if !l.cfg.NoProbe {
			stanza, err := probe.GenerateKey(l.ProbeKeyFile(s.Name), true)
			if err != nil {
				return fmt.Errorf("generating the probe key of %s: %w", s.Name, err)
			}
			conf += "\n" + stanza
		}
		if err := os.WriteFile(l.path(s.Name, "wg0.conf"), []byte(conf), 0o600); err != nil {
			return fmt.Errorf("writing wg config: %w", err)
		}
		if err := os.WriteFile(l.path(s.Name, "private.key"), []byte(server.String()+"\n"), 0o600); err != nil {
			return fmt.Errorf("writing key: %w", err)
		}
	}
	return nil
}

// publicKey returns the WireGuard public key of node ("client", or a
// server: both hold the same key), from the private key makeKeys wrote.
func (l *Lab) publicKey(node string) (string, error) {
	b, err := os.ReadFile(l.path(node, "private.key"))
	if err != nil {
		return "", fmt.Errorf("reading the key of %s: %w", node, err)
	}
	k, err := wgtypes.ParseKey(strings.TrimSpace(string(b)))
	if err != nil {
		return "", fmt.Errorf("parsing the key of %s: %w", node, err)
	}
	return k.PublicKey().String(), nil
}

// WaitRouted waits until the router routes VIPPrefix via every server.
func (l *Lab) WaitRouted(ctx context.Context, timeout time.Duration) error {
	return labproc.Poll(ctx, timeout, 50*time.Millisecond, "every nexthop on the router", func() (bool, error) {
		nh, err := l.Nexthops()
		return err == nil && l.AllRouted(nh), err
	})
}

// WaitTunnel waits until a ping through the client's tunnel is answered.
// A client that tried to connect before the router had a route to the VIP
// retries its handshake only every 5 s (WireGuard's REKEY_TIMEOUT); if the
// first ping fails, the client's peer is re-created, which handshakes at
// once.
func (l *Lab) WaitTunnel(ctx context.Context, timeout time.Duration) error {
	return l.WaitClient(ctx, "client", timeout)
}

// WaitClient does what WaitTunnel does for the client called name.
func (l *Lab) WaitClient(ctx context.Context, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := l.PingFrom(name, time.Second); err == nil {
		return nil
	}
	if err := l.Reconnect(ctx, name); err != nil {
		return err
	}
	for {
		sent := time.Now()
		if _, err := l.PingFrom(name, 250*time.Millisecond); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no reply through %s's tunnel: %w", name, ctx.Err())
		case <-time.After(time.Until(sent.Add(250 * time.Millisecond))):
		}
	}
}

// ReconnectClient removes the client's peer and adds it again, as a
// restarted client would: the new peer handshakes at once.
func (l *Lab) ReconnectClient(ctx context.Context) error { return l.Reconnect(ctx, "client") }

// Reconnect does what ReconnectClient does for the client called name.
func (l *Lab) Reconnect(ctx context.Context, name string) error {
	out, err := l.wg(ctx, name, "show", WGInterface, "peers")
	if err != nil {
		return fmt.Errorf("reconnecting %s: %w", name, err)
	}
	args := []string{"set", WGInterface}
	for _, p := range strings.Fields(out) {
		args = append(args, "peer", p, "remove")
	}
	if len(args) > 2 {
		if _, err := l.wg(ctx, name, args...); err != nil {
			return fmt.Errorf("reconnecting %s: %w", name, err)
		}
	}
	return l.ensureWireGuard(ctx, name)
}
