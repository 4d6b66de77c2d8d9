package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wgbird/wgbird/internal/lab"
	"github.com/wgbird/wgbird/internal/labsoak"
)

// The soak's own lab, apart from the demo's, the tests' and the bench's.
const (
	defaultSoakDir    = "/run/wgbird-soak"
	defaultSoakPrefix = "wgsk"
)

const soakUsage = `usage: wgbird-lab soak [flags]

Brings up a lab of its own (namespaces PREFIX-*; the home network unless
--routed, with client, client2 and idle), then runs CYCLES fail/heal
cycles over both servers: each cycle breaks one server (or, one time in
four, both), each in a mode chosen at random, waits until the router's
kernel table matches the truth and checks that it stays so, heals, and
waits for both nexthops again, no sooner than rise allows. After every
cycle it reads each client's endpoint for the server peer: one that is
not the service address (the router's public address, or the VIP with
--routed) is a client pinned off the VIP; it is printed, counted (target
0) and put back. Prints a line per cycle, the mismatches (must be 0), and
each wgbird's goroutines, fds and RSS at the start and the end (must be
flat), and its heap in use, live heap (both after a forced GC, the
least of three reads 300 ms apart, through the control socket: the lab
runs wgbird with --pprof) and RSS
before the first cycle, after the warm-up, every 100 cycles and at the
end: neither heap may grow by more than the slack from the warm-up to the
end. Each wgbird also runs an exec check (every interval) and a hook
(every transition), both /bin/true, so that their runs are measured too.
Tears the lab down however it ends, Ctrl-C included. Exits 1 when a
mismatch or a leak was found (or a pin, with --fail-on-pin; not one after a
port change: WireGuard's own packets from the new port move the client).
Needs root; a cycle takes about 5 s.

flags:
  --cycles N         fail/heal cycles (default 500)
  --seed S           seed of the random choices (default 0: from the clock;
                     the seed is printed, and repeats a run)
  --settle D         wait this long for the table to reach the truth (default 20s)
  --warm-up N        cycles before the heap's baseline (default: a fifth of
                     the cycles, at most 100)
  --heap-slack B     heap growth allowed after the warm-up, in bytes
                     (default %d)
  --profiles DIR     keep each wgbird's heap profile at every checkpoint in
                     DIR (heap-s1-0100.pb.gz: go tool pprof -base A B)
  --fail-on-pin      exit 1 when a client was found off the service address
  --routed           no home network: clients reach the VIP routed, no NAT
  --no-probe         run wgbird without its active probe (key-rotate left out)
  --keep             leave the lab up at the end
  --wgbird PATH      wgbird binary (default: wgbird next to this executable)
  --interval D, --rise N, --fall N   wgbird thresholds (default 1s, 3, 2)
  --dir DIR          lab directory (default %s)
  --prefix PREFIX    namespace prefix (default %s)
  -v                 log what the lab does
`

// runSoak is `wgbird-lab soak`.
func runSoak(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wgbird-lab soak", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var c common
	c.register(fs)
	var u upFlags
	u.register(fs)
	c.dir, c.prefix = defaultSoakDir, defaultSoakPrefix
	fs.Lookup("dir").DefValue, fs.Lookup("prefix").DefValue = defaultSoakDir, defaultSoakPrefix
	cycles := fs.Int("cycles", 500, "fail/heal cycles")
	seed := fs.Uint64("seed", 0, "seed (0: from the clock)")
	settle := fs.Duration("settle", 20*time.Second, "wait for the truth")
	noProbe := fs.Bool("no-probe", false, "run wgbird without the probe")
	keep := fs.Bool("keep", false, "leave the lab up")
	warmUp := fs.Int("warm-up", 0, "cycles before the heap's baseline")
	heapSlack := fs.Int64("heap-slack", labsoak.HeapSlack, "heap growth allowed, bytes")
	profiles := fs.String("profiles", "", "keep heap profiles in DIR")
	failOnPin := fs.Bool("fail-on-pin", false, "exit 1 when a client was found off the service address")
	usage := func(w io.Writer) { fmt.Fprintf(w, soakUsage, labsoak.HeapSlack, defaultSoakDir, defaultSoakPrefix) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "wgbird-lab soak: %v\n\n", err)
		usage(stderr)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wgbird-lab soak: takes no arguments, got %q\n", fs.Args())
		return 2
	}
	if *cycles < 1 || *settle <= 0 || *heapSlack <= 0 {
		fmt.Fprintln(stderr, "wgbird-lab soak: --cycles, --settle and --heap-slack must be positive")
		return 2
	}
	if *warmUp < 0 || *warmUp > *cycles {
		fmt.Fprintf(stderr, "wgbird-lab soak: --warm-up must be between 0 and --cycles (%d)\n", *cycles)
		return 2
	}
	if *profiles != "" {
		if err := os.MkdirAll(*profiles, 0o755); err != nil {
			fmt.Fprintf(stderr, "wgbird-lab soak: --profiles: %v\n", err)
			return 1
		}
	}
	if u.wgbird == "" {
		fmt.Fprintln(stderr, "wgbird-lab soak: the soak needs wgbird: pass --wgbird PATH")
		return 2
	}
	if u.servers != 2 {
		fmt.Fprintln(stderr, "wgbird-lab soak: the soak runs two servers (--servers 2)")
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "wgbird-lab soak: needs root (network namespaces, mounts)")
		return 1
	}
	if missing := lab.Missing(); len(missing) > 0 {
		fmt.Fprintf(stderr, "wgbird-lab soak: missing %s (Debian: apt-get install bird2 wireguard-go wireguard-tools iproute2 nftables)\n", strings.Join(missing, ", "))
		return 1
	}
	if err := u.check(); err != nil {
		fmt.Fprintf(stderr, "wgbird-lab soak: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := u.config(c, c.logger(stderr))
	cfg.NoProbe, cfg.WgbirdExtra = *noProbe, labsoak.WgbirdExtra
	cfg.SecondClient, cfg.IdleClient = true, true
	res, err := soak(ctx, stdout, cfg,
		labsoak.Options{Cycles: *cycles, Seed: *seed, Out: stdout, Settle: *settle, WarmUp: *warmUp, HeapSlack: *heapSlack, ProfileDir: *profiles, FailOnPin: *failOnPin}, *keep)
	if err != nil {
		fmt.Fprintf(stderr, "wgbird-lab soak: %v (seed %d)\n", err, res.Seed)
		return 1
	}
	if !res.OK() {
		fmt.Fprintf(stderr, "wgbird-lab soak: %d mismatches, %d figures not flat, %d clients off the service address (repeat with --seed %d)\n", len(res.Mismatches), len(res.Leaks), len(res.Failing()), res.Seed)
		return 1
	}
	return 0
}

// soak brings the lab up, soaks it and tears it down (unless keep).
func soak(ctx context.Context, out io.Writer, cfg lab.Config, opts labsoak.Options, keep bool) (res labsoak.Result, err error) {
	l := lab.New(cfg)
	defer func() {
		if keep && ctx.Err() == nil {
			fmt.Fprintf(out, "lab left up in %s (wgbird-lab --dir %s down)\n", l.Dir(), l.Dir())
			return
		}
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if derr := l.Down(dctx); derr != nil && err == nil {
			err = derr
		}
	}()
	start := time.Now()
	l, err = lab.Up(ctx, cfg)
	if err != nil {
		return res, err
	}
	if err := l.WaitRouted(ctx, 30*time.Second); err != nil {
		return res, fmt.Errorf("lab is up but not routed (see %s): %w", l.WgbirdLog("s1"), err)
	}
	fmt.Fprintf(out, "lab up and routed in %s (%s)\n", time.Since(start).Round(100*time.Millisecond), l.Dir())
	return labsoak.Run(ctx, l, opts)
}
