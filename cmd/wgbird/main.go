// Command wgbird is the WireGuard health-check sidecar for BIRD.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/wgbird/wgbird/internal/cli"
)

// The Go runtime's settings for a small daemon that runs around the clock
// on a Raspberry Pi next to BIRD (issue 14); GOGC and GOMAXPROCS in the
// environment win.
const (
	// gcPercent: the live heap is 1-2 MB at 1,000 peers and wgbird
	// allocates a few hundred KB a second. Go's 100 lets the heap grow by
	// the live heap plus the stacks between collections, 25 by a quarter
	// of that: about 2 MB less resident for one more collection of a
	// small heap every few seconds.
	gcPercent = 25
	// maxProcs: the work is a few hundred microseconds twice a second. On
	// one P the goroutines woken together run one after another on one
	// thread instead of waking a second: 0.33-0.38 % of a core idle at
	// 1,000 peers instead of 0.43 %, and 0.5 MB less. Go preempts a
	// goroutine after 10 ms and a blocking system call hands the P on, so
	// no check waits on another longer than that.
	maxProcs = 1
)

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(maxProcs)
	}
	// Memory profiling samples every 512 KB allocated and keeps what it
	// found, for nothing unless `wgbird run --pprof` serves it, which
	// turns it on again; GODEBUG's memprofilerate wins.
	if !cli.GodebugSets(os.Getenv("GODEBUG"), "memprofilerate") {
		runtime.MemProfileRate = 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], &cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}
