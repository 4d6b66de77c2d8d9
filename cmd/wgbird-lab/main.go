// Command wgbird-lab builds the seed post's topology (router, two WireGuard
// servers with bird2 and wgbird, a WireGuard client) in network namespaces,
// breaks and heals servers, and runs the demo.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/wgbird/wgbird/internal/lab"
	"github.com/wgbird/wgbird/internal/labjudge"
	"github.com/wgbird/wgbird/internal/labstatus"
)

const usage = `usage: wgbird-lab COMMAND [flags] [args]

Builds the seed post's home network in network namespaces PREFIX-router,
PREFIX-inet, PREFIX-s1, PREFIX-s2 and PREFIX-client: a router running bird2
(AS 65001, ECMP over BGP with BFD) that port-forwards its public address
198.18.0.1:51820 to the VIP, two servers running bird2 (AS 65000),
wireguard-go (wg0 holding the VIP 192.168.20.1/24, both with the same key)
and wgbird, and a client on the internet side (PREFIX-inet) whose WireGuard
endpoint is the router's public address. Needs root.

commands:
  up                 tear down any leftover lab, build a new one, wait for routes
  down               tear the lab down (idempotent)
  status [--json]    router nexthops, each server's state, client's handshake
  fail SERVER MODE   break SERVER (s1 or s2) and show when its nexthop goes
  heal SERVER        restore SERVER fully, whatever was broken
  demo               up, show failover and recovery, down (also on Ctrl-C)
  bench              measure failover against references (wgbird-lab bench --help)
  soak               random fail/heal cycles judged by the router (wgbird-lab soak --help)
  timeline           one failover and its return as an SVG picture (wgbird-lab timeline --help)

modes:
%s
common flags:
  --dir DIR          lab directory (default %s)
  --prefix PREFIX    namespace prefix (default %s)
  -v                 log what the lab does
up and demo flags:
  --wgbird PATH      wgbird binary (default: wgbird next to this executable;
                     --wgbird= runs none, leaving the static protocols disabled)
  --bird PATH        bird binary, birdc next to it (default: bird and birdc
                     from PATH; e.g. /opt/bird-3.3.2/sbin/bird from .ci/build-bird)
  --routing bgp|ospf how the servers announce the VIP prefix to the router
                     (default bgp; ospf: area 0 on br0, external routes, ECMP)
  --interval D, --rise N, --fall N   wgbird thresholds (default 1s, 3, 2)
  --routed           no home network: clients reach the VIP routed, no NAT
                     (default: the router port-forwards its public address
                     198.18.0.1:51820 to the VIP, as the seed post's does)
up flags:
  --servers N        2 (default) or 3 servers
  --second-client    add client2, which the router's hash sends to another server
  --idle-client      add idle, a client that sends only keepalives (25 s)

status flags:
  --json             print JSON
fail flags:
  --wait D           wait this long for the nexthop to go (default 15s; 0: don't)

Flags may stand before or after the command.
`

func modesHelp() string {
	var b strings.Builder
	for _, m := range lab.Modes {
		fmt.Fprintf(&b, "  %-16s %s\n", m.Mode, m.Help)
	}
	return b.String()
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, usage, modesHelp(), lab.DefaultDir, lab.DefaultPrefix)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// common holds the flags every command takes.
type common struct {
	dir, prefix string
	verbose     bool
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.dir, "dir", lab.DefaultDir, "lab directory")
	fs.StringVar(&c.prefix, "prefix", lab.DefaultPrefix, "namespace prefix")
	fs.BoolVar(&c.verbose, "v", false, "log what the lab does")
}

func (c *common) logger(stderr io.Writer) *slog.Logger {
	level := slog.LevelWarn
	if c.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
}

// upFlags are the flags of up and demo.
type upFlags struct {
	wgbird     string
	bird       string
	routing    string
	thresholds lab.Thresholds
	routed     bool
	servers    int
	client2    bool
	idle       bool
}

// config returns the lab config of these flags.
func (u *upFlags) config(c common, log *slog.Logger) lab.Config {
	return lab.Config{Dir: c.dir, Prefix: c.prefix, Wgbird: u.wgbird, Bird: u.bird, Routing: lab.Routing(u.routing), Thresholds: u.thresholds, Log: log,
		Routed: u.routed, ServerCount: u.servers, SecondClient: u.client2, IdleClient: u.idle}
}

func (u *upFlags) register(fs *flag.FlagSet) {
	def := "wgbird"
	if exe, err := os.Executable(); err == nil {
		def = filepath.Join(filepath.Dir(exe), "wgbird")
	}
	fs.StringVar(&u.wgbird, "wgbird", def, "wgbird binary (empty: run none)")
	fs.StringVar(&u.bird, "bird", "", "bird binary, birdc next to it (default: from PATH)")
	fs.StringVar(&u.routing, "routing", "bgp", "how the servers announce the VIP prefix: bgp or ospf")
	fs.DurationVar(&u.thresholds.Interval, "interval", 0, "wgbird check interval (default 1s)")
	fs.IntVar(&u.thresholds.Rise, "rise", 0, "wgbird rise (default 3)")
	fs.IntVar(&u.thresholds.Fall, "fall", 0, "wgbird fall (default 2)")
	fs.BoolVar(&u.routed, "routed", false, "no home network: the router routes the clients to the VIP, no NAT")
	fs.IntVar(&u.servers, "servers", 2, "number of servers (2 or 3)")
	fs.BoolVar(&u.client2, "second-client", false, "add client2, hashed to another server than client")
	fs.BoolVar(&u.idle, "idle-client", false, "add idle, a client that sends only keepalives")
}

func (u *upFlags) check() error {
	if _, err := lab.ParseRouting(u.routing); err != nil {
		return err
	}
	if u.servers < 2 || u.servers > len(lab.AllServers) {
		return fmt.Errorf("--servers %d: want 2 or 3", u.servers)
	}
	if u.wgbird == "" {
		return nil
	}
	if _, err := os.Stat(u.wgbird); err != nil {
		return fmt.Errorf("wgbird binary: %w (build it: go build -o %s ./cmd/wgbird; or pass --wgbird PATH, or --wgbird= to run none)", err, u.wgbird)
	}
	return nil
}

// commandFlags lists the flags each command accepts besides the common ones.
var commandFlags = map[string][]string{
	"up":     {"wgbird", "bird", "routing", "interval", "rise", "fall", "routed", "servers", "second-client", "idle-client"},
	"demo":   {"wgbird", "bird", "routing", "interval", "rise", "fall", "routed"},
	"status": {"json"},
	"fail":   {"wait"},
	"down":   nil,
	"heal":   nil,
}

// commandArgs is the number of positional arguments of each command.
var commandArgs = map[string]int{"up": 0, "down": 0, "status": 0, "demo": 0, "fail": 2, "heal": 1}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "bench" {
		return runBench(args[1:], stdout, stderr) // bench.go: flags of its own
	}
	if len(args) > 0 && args[0] == "soak" {
		return runSoak(args[1:], stdout, stderr) // soak.go: flags of its own
	}
	if len(args) > 0 && args[0] == "timeline" {
		return runTimeline(args[1:], stdout, stderr) // timeline.go: flags of its own
	}
	// One flag set for every command, so flags may stand before the
	// command (wgbird-lab --wgbird bin/wgbird demo) or after it.
	fs := flag.NewFlagSet("wgbird-lab", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var c common
	c.register(fs)
	var u upFlags
	u.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	wait := fs.Duration("wait", 15*time.Second, "wait this long for the nexthop to go (0: don't wait)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "wgbird-lab: %v\n\n", err)
		printUsage(stderr)
		return 2
	}
	if fs.NArg() == 0 || fs.Arg(0) == "help" {
		printUsage(stdout)
		if fs.NArg() == 0 {
			return 2
		}
		return 0
	}
	cmd := fs.Arg(0)
	allowed, known := commandFlags[cmd]
	if !known {
		fmt.Fprintf(stderr, "wgbird-lab: unknown command %q\n\n", cmd)
		printUsage(stderr)
		return 2
	}
	// Flags and arguments may interleave: fail s1 kill --wait 0.
	var pos []string
	for rest := fs.Args()[1:]; ; rest = fs.Args()[1:] {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printUsage(stdout)
				return 0
			}
			fmt.Fprintf(stderr, "wgbird-lab %s: %v\n", cmd, err)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
	}
	var bad []string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "dir", "prefix", "v":
			return
		}
		if !slices.Contains(allowed, f.Name) {
			bad = append(bad, "--"+f.Name)
		}
	})
	if len(bad) > 0 {
		fmt.Fprintf(stderr, "wgbird-lab %s: %s not accepted by this command\n", cmd, strings.Join(bad, ", "))
		return 2
	}
	if len(pos) != commandArgs[cmd] {
		fmt.Fprintf(stderr, "wgbird-lab %s: want %d argument(s), got %d\n", cmd, commandArgs[cmd], len(pos))
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "wgbird-lab: needs root (network namespaces, mounts)")
		return 1
	}
	if missing := lab.Missing(); len(missing) > 0 {
		fmt.Fprintf(stderr, "wgbird-lab: missing %s (Debian: apt-get install bird2 wireguard-go wireguard-tools iproute2 nftables)\n", strings.Join(missing, ", "))
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := c.logger(stderr)
	var err error
	switch cmd {
	case "up":
		if err = u.check(); err == nil {
			err = cmdUp(ctx, stdout, u.config(c, log))
		}
	case "down":
		err = lab.New(lab.Config{Dir: c.dir, Prefix: c.prefix, Log: log}).Down(ctx)
	case "status":
		err = cmdStatus(ctx, stdout, c.dir, log, *asJSON)
	case "fail":
		err = cmdFail(ctx, stdout, c.dir, log, pos[0], pos[1], *wait)
	case "heal":
		err = cmdHeal(ctx, stdout, c.dir, log, pos[0])
	case "demo":
		if u.wgbird == "" {
			err = errors.New("the demo needs wgbird: pass --wgbird PATH")
		} else if err = u.check(); err == nil {
			err = demo(ctx, stdout, u.config(c, log))
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "wgbird-lab %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

func cmdUp(ctx context.Context, out io.Writer, cfg lab.Config) error {
	start := time.Now()
	l, err := lab.Up(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "lab up in %s (%s)\n", l.Dir(), time.Since(start).Round(time.Millisecond))
	if cfg.Wgbird == "" {
		fmt.Fprintf(out, "no wgbird: the static protocols stay disabled; enable one by hand with\n  birdc -s %s enable %s\n", l.BirdSocket("s1"), lab.Protocol)
	} else if err := l.WaitRouted(ctx, 30*time.Second); err != nil {
		return fmt.Errorf("lab is up but not routed (see %s): %w", l.WgbirdLog("s1"), err)
	} else {
		fmt.Fprintf(out, "router: %s via %s (%s)\n", lab.VIPPrefix, labjudge.FormatNexthops(mustNexthops(l)), time.Since(start).Round(time.Millisecond))
		for _, c := range l.Clients() {
			if err := l.WaitClient(ctx, c.Name, 20*time.Second); err != nil {
				return err
			}
			home, _ := l.HomeServer(c.Name)
			fmt.Fprintf(out, "%s (%s, endpoint %s): tunnel to %s answers, via %s\n", c.Name, l.ClientAddr(c.Name), l.Endpoint(), lab.TunnelServer.Addr(), home.Name)
		}
	}
	return nil
}

func mustNexthops(l *lab.Lab) []netip.Addr {
	nh, _ := l.Nexthops()
	return nh
}

func cmdStatus(ctx context.Context, out io.Writer, dir string, log *slog.Logger, asJSON bool) error {
	l, err := lab.Open(dir, log)
	if err != nil {
		return err
	}
	st := labstatus.Read(ctx, l)
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	st.Write(out)
	return nil
}

func cmdFail(ctx context.Context, out io.Writer, dir string, log *slog.Logger, server, mode string, wait time.Duration) error {
	l, err := lab.Open(dir, log)
	if err != nil {
		return err
	}
	s, err := lab.ServerByName(server)
	if err != nil {
		return err
	}
	if !slices.Contains(l.Servers(), s) {
		return fmt.Errorf("the lab in %s has no %s (up --servers 3 adds it)", dir, server)
	}
	m, err := lab.ParseMode(mode)
	if err != nil {
		return err
	}
	w, err := l.Watch()
	if err != nil {
		return err
	}
	defer w.Close()
	wasRouted := slices.Contains(w.Current(), s.Addr)
	t0, err := l.Fail(ctx, server, m.Mode)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: %s\n", server, m.Help)
	if wait <= 0 {
		return nil
	}
	if !wasRouted {
		fmt.Fprintf(out, "router: nexthop %s was not routed before the fault\n", s.Addr)
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	c, err := w.WaitFor(wctx, t0, labjudge.Lacks(s.Addr))
	if err != nil {
		return fmt.Errorf("nexthop %s still there: %w", s.Addr, err)
	}
	fmt.Fprintf(out, "router: nexthop %s withdrawn %d ms after the fault; %s via %s\n",
		s.Addr, c.At.Sub(t0).Milliseconds(), lab.VIPPrefix, labjudge.FormatNexthops(c.Nexthops))
	if m.SelfHealing {
		if c2, err := w.WaitFor(wctx, c.At, labjudge.Has(s.Addr)); err == nil {
			fmt.Fprintf(out, "router: nexthop %s back %d ms after the fault (wgbird re-enabled %s)\n", s.Addr, c2.At.Sub(t0).Milliseconds(), lab.Protocol)
		}
	}
	return nil
}

func cmdHeal(ctx context.Context, out io.Writer, dir string, log *slog.Logger, server string) error {
	l, err := lab.Open(dir, log)
	if err != nil {
		return err
	}
	if err := l.Heal(ctx, server); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s healed\n", server)
	return nil
}
