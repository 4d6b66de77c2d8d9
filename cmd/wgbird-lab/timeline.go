package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/wgbird/wgbird/internal/lab"
	"github.com/wgbird/wgbird/internal/labbench"
	"github.com/wgbird/wgbird/internal/labplot"
)

const timelineUsage = `usage: wgbird-lab timeline [flags]

Brings a lab of its own up (the bench's), breaks s1 once in MODE with the
client pinging through its tunnel every 100 ms, heals it, and draws what
was measured as SVG files, once with wgbird's takeover off and once on:
the router's nexthops, the client's pings (a dot per answered ping, red for
lost ones) and wgbird's transitions, on one clock. Needs root; about a
minute.

flags:
  --wgbird PATH      wgbird binary (default: wgbird next to this executable)
  --mode MODE        the fault (default hang)
  --out DIR          where to write timeline-MODE-takeover-off.svg and -on.svg
                     (default .)
  --routed           no home network NAT
  --dir DIR, --prefix PREFIX, -v   as for bench
`

// runTimeline is `wgbird-lab timeline`.
func runTimeline(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wgbird-lab timeline", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f benchFlags
	f.register(fs)
	mode := fs.String("mode", "hang", "fault mode")
	out := fs.String("out", ".", "directory for the SVG files")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, timelineUsage)
			return 0
		}
		fmt.Fprintf(stderr, "wgbird-lab timeline: %v\n\n%s", err, timelineUsage)
		return 2
	}
	m, err := lab.ParseMode(*mode)
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("takes no arguments, got %q", fs.Args())
	}
	if err == nil && f.wgbird == "" {
		err = errors.New("needs wgbird: pass --wgbird PATH")
	}
	if err == nil {
		err = f.upFlags.check()
	}
	if err != nil {
		fmt.Fprintf(stderr, "wgbird-lab timeline: %v\n", err)
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "wgbird-lab timeline: needs root (network namespaces, mounts)")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := labbench.RunBench(ctx, labbench.BenchConfig{
		Lab:    lab.Config{Dir: f.dir, Prefix: f.prefix, Wgbird: f.wgbird, Thresholds: f.thresholds, Log: f.common.logger(stderr), Routed: f.routed},
		Series: []labbench.BenchSeries{labbench.SeriesClient}, ClientModes: []lab.Mode{m.Mode}, ClientReps: 1,
		Progress: stdout, KeepTimelines: true,
	})
	if err != nil {
		fmt.Fprintf(stderr, "wgbird-lab timeline: %v\n", err)
		return 1
	}
	if res.Client == nil || len(res.Client.Timelines) == 0 {
		reason := "no repetition succeeded"
		if res.Client != nil && res.Client.Skipped != "" {
			reason = res.Client.Skipped
		}
		fmt.Fprintf(stderr, "wgbird-lab timeline: nothing to draw: %s\n", reason)
		return 1
	}
	if err := drawTimelines(res.Client, *out, *out, stdout); err != nil {
		fmt.Fprintf(stderr, "wgbird-lab timeline: %v\n", err)
		return 1
	}
	for _, p := range res.Client.Pictures {
		fmt.Fprintf(stdout, "%s: %s\n", p.Path, p.Title)
	}
	return 0
}

// drawTimelines draws every timeline of r into dir as
// timeline-MODE-takeover-on|off.svg and records them in r.Pictures with
// paths relative to base (README's directory).
func drawTimelines(r *labbench.ClientResult, dir, base string, stdout io.Writer) error {
	if len(r.Timelines) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	for _, tl := range r.Timelines {
		to := "off"
		if tl.Takeover {
			to = "on"
		}
		file := filepath.Join(dir, fmt.Sprintf("timeline-%s-takeover-%s.svg", tl.Mode, to))
		if err := writeSVG(file, tl); err != nil {
			return err
		}
		rel, err := filepath.Rel(base, file)
		if err != nil {
			rel = file
		}
		r.Pictures = append(r.Pictures, labbench.Picture{Title: labplot.Title(tl), Path: filepath.ToSlash(rel)})
		fmt.Fprintf(stdout, "wrote %s\n", file)
	}
	return nil
}

func writeSVG(file string, tl labbench.Timeline) error {
	var buf bytes.Buffer
	servers := lab.Servers
	if strings.TrimSpace(tl.Server) == "" {
		return errors.New("timeline without a server")
	}
	if err := labplot.Timeline(tl, servers, &buf); err != nil {
		return err
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return nil
}
