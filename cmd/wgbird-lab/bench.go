package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/wgbird/wgbird/internal/lab"
	"github.com/wgbird/wgbird/internal/labbench"
)

const benchUsage = `usage: wgbird-lab bench [flags]

Measures failover in a lab of its own (namespaces PREFIX-*): for each fault
MODE, REPS times, the time from the fault until the router's kernel route
loses the server's nexthop, and from the heal until it is back; the same
for the references (disable/enable straight to BIRD's socket, BIRD + BFD
without a sidecar, ExaBGP's healthcheck); and the idle cost of wgbird run.
Prints a line per repetition, then the markdown block that README.md
includes; with --readme, writes that block into the file between the
markers <!-- bench:start --> and <!-- bench:end -->. Needs root; takes
about 25 minutes with the defaults (make bench: --ref-reps 10).

flags:
  --wgbird PATH      wgbird binary (default: wgbird next to this executable)
  --series LIST      comma-separated: wgbird, client, floor, bird, exabgp, ospf, idle (default all;
                     ospf: wgbird over OSPF in a lab of its own, hang, kill and drain)
  --modes LIST       comma-separated modes (default all: %s)
  --reps N           repetitions per mode for wgbird (default 20)
  --ref-reps N       repetitions per mode for the references (default: --reps)
  --bound D          wait this long for a withdrawal before "not withdrawn" (default 10s)
  --idle D           idle-cost window (default 60s)
  --idle-peers N     peers on wg0 for the idle cost (default 1000)
  --server NAME      the server to break: s1 or s2 (default s1)
  --interval D, --rise N, --fall N   wgbird thresholds (default 1s, 3, 2)
  --client-reps N    repetitions per mode of the client's view (default 5)
  --client-modes L   modes of the client's view (default %s)
  --svg-dir DIR      draw the client's timelines (hang, kill) as SVG files
                     here (default: internal/labbench/pictures beside
                     --readme; none without)
  --go-bench FILE    go test -bench output to include in the block
  --readme FILE      also write the block into FILE (make bench: README.md),
                     replacing the one there: only for a full run
  --json FILE        also write every sample as JSON
  --label TEXT       how the README names the command (default: this command line)
  --dir DIR          lab directory (default %s)
  --prefix PREFIX    namespace prefix (default %s)
  -v                 log what the lab does
`

func printBenchUsage(w io.Writer) {
	names := make([]string, len(labbench.BenchModes))
	for i, m := range labbench.BenchModes {
		names[i] = string(m)
	}
	cnames := make([]string, len(labbench.ClientModes))
	for i, m := range labbench.ClientModes {
		cnames[i] = string(m)
	}
	fmt.Fprintf(w, benchUsage, strings.Join(names, ", "), strings.Join(cnames, ","), labbench.DefaultBenchDir, labbench.DefaultBenchPrefix)
}

// benchFlags are bench's flags.
type benchFlags struct {
	common
	upFlags
	series, modes          string
	reps, refReps          int
	bound, idle            time.Duration
	idlePeers              int
	server                 string
	goBench, readme, jsonf string
	label                  string
	clientReps             int
	clientModes, svgDir    string
}

func (f *benchFlags) register(fs *flag.FlagSet) {
	f.common.register(fs)
	f.upFlags.register(fs)
	// The bench lab's own defaults, apart from the demo's and the tests'.
	fs.Lookup("dir").DefValue = labbench.DefaultBenchDir
	fs.Lookup("prefix").DefValue = labbench.DefaultBenchPrefix
	f.dir, f.prefix = labbench.DefaultBenchDir, labbench.DefaultBenchPrefix
	fs.StringVar(&f.series, "series", "all", "series to run")
	fs.StringVar(&f.modes, "modes", "all", "modes to run")
	fs.IntVar(&f.reps, "reps", 20, "repetitions per mode for wgbird")
	fs.IntVar(&f.refReps, "ref-reps", 0, "repetitions per mode for the references")
	fs.DurationVar(&f.bound, "bound", 10*time.Second, "withdrawal wait")
	fs.DurationVar(&f.idle, "idle", time.Minute, "idle-cost window")
	fs.IntVar(&f.idlePeers, "idle-peers", 1000, "peers for the idle cost")
	fs.StringVar(&f.server, "server", "s1", "server to break")
	fs.StringVar(&f.goBench, "go-bench", "", "go test -bench output")
	fs.StringVar(&f.readme, "readme", "", "file to write the block into")
	fs.StringVar(&f.jsonf, "json", "", "JSON output file")
	fs.StringVar(&f.label, "label", "", "command name for the README")
	fs.IntVar(&f.clientReps, "client-reps", 5, "repetitions per mode of the client's view")
	fs.StringVar(&f.clientModes, "client-modes", "", "modes of the client's view")
	fs.StringVar(&f.svgDir, "svg-dir", "", "directory for the timeline SVGs")
}

// runBench is `wgbird-lab bench`.
func runBench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wgbird-lab bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f benchFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printBenchUsage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "wgbird-lab bench: %v\n\n", err)
		printBenchUsage(stderr)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wgbird-lab bench: takes no arguments, got %q\n", fs.Args())
		return 2
	}
	series, err := labbench.ParseSeries(f.series)
	if err == nil {
		// The bench's lab has two servers.
		if !slices.ContainsFunc(lab.Servers, func(s lab.Server) bool { return s.Name == f.server }) {
			err = fmt.Errorf("unknown server %q (want s1 or s2)", f.server)
		}
	}
	var modes []lab.Mode
	if err == nil {
		modes, err = labbench.ParseBenchModes(f.modes)
	}
	var clientModes []lab.Mode
	if err == nil && f.clientModes != "" {
		clientModes, err = labbench.ParseBenchModes(f.clientModes)
	}
	if err == nil && (f.reps < 1 || f.refReps < 0 || f.idlePeers < 1 || f.bound <= 0 || f.idle <= 0 || f.clientReps < 1) {
		err = errors.New("--reps, --client-reps, --idle-peers, --bound and --idle must be positive")
	}
	if err == nil && f.wgbird == "" {
		err = errors.New("the benchmark needs wgbird: pass --wgbird PATH")
	}
	if err != nil {
		fmt.Fprintf(stderr, "wgbird-lab bench: %v\n", err)
		return 2
	}
	var goBench []labbench.GoBench
	module := modulePath()
	if f.goBench != "" {
		// Read it first: a missing file should not cost a whole run.
		fh, err := os.Open(f.goBench)
		if err != nil {
			fmt.Fprintf(stderr, "wgbird-lab bench: %v\n", err)
			return 1
		}
		goBench, err = labbench.ParseGoBench(fh)
		fh.Close()
		if err != nil {
			fmt.Fprintf(stderr, "wgbird-lab bench: %v\n", err)
			return 1
		}
		labbench.MarkIntegration(goBench, ".", module)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "wgbird-lab bench: needs root (network namespaces, mounts)")
		return 1
	}
	if missing := lab.Missing(); len(missing) > 0 {
		fmt.Fprintf(stderr, "wgbird-lab bench: missing %s (Debian: apt-get install bird2 wireguard-go wireguard-tools iproute2 nftables)\n", strings.Join(missing, ", "))
		return 1
	}
	if err := f.upFlags.check(); err != nil {
		fmt.Fprintf(stderr, "wgbird-lab bench: %v\n", err)
		return 1
	}
	label := f.label
	if label == "" {
		label = strings.Join(append([]string{"wgbird-lab bench"}, args...), " ")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var log *slog.Logger
	if f.verbose {
		log = f.common.logger(stderr)
	}
	res, err := labbench.RunBench(ctx, labbench.BenchConfig{
		Lab:    lab.Config{Dir: f.dir, Prefix: f.prefix, Wgbird: f.wgbird, Thresholds: f.thresholds, Log: log, Routed: f.routed},
		Server: f.server, Series: series, Modes: modes,
		Reps: f.reps, RefReps: f.refReps, Bound: f.bound,
		IdleWindow: f.idle, IdlePeers: f.idlePeers,
		ClientReps: f.clientReps, ClientModes: clientModes,
		Progress: stdout,
	})
	res.GoBench = goBench
	res.Command = label
	svgDir := f.svgDir
	if svgDir == "" && f.readme != "" {
		svgDir = filepath.Join(filepath.Dir(f.readme), "internal", "labbench", "pictures")
	}
	if svgDir != "" && res.Client != nil {
		base := "."
		if f.readme != "" {
			base = filepath.Dir(f.readme)
		}
		if derr := drawTimelines(res.Client, svgDir, base, stdout); derr != nil {
			fmt.Fprintf(stderr, "wgbird-lab bench: %v\n", derr)
			return 1
		}
	}
	block := res.Markdown(module)
	fmt.Fprintf(stdout, "\n%s", block)
	if f.jsonf != "" {
		if jerr := writeJSON(f.jsonf, res); jerr != nil {
			fmt.Fprintf(stderr, "wgbird-lab bench: %v\n", jerr)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "wgbird-lab bench: %v\n", err)
		if f.readme != "" {
			fmt.Fprintf(stderr, "wgbird-lab bench: %s left as it was\n", f.readme)
		}
		return 1
	}
	if f.readme != "" {
		if err := writeBlock(f.readme, block); err != nil {
			fmt.Fprintf(stderr, "wgbird-lab bench: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "\nwrote the block into %s\n", f.readme)
	}
	return 0
}

// writeBlock replaces the benchmark block of a markdown file.
func writeBlock(path, block string) error {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".bench")
	if err := os.WriteFile(tmp, []byte(labbench.ReplaceBlock(string(b), block)), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// modulePath is this binary's module path, for the benchmark commands.
func modulePath() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Path != "" {
		return bi.Main.Path
	}
	return "github.com/wgbird/wgbird"
}
