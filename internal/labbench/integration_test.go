//go:build integration

package labbench

import (
	"context"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wgbird/wgbird/internal/lab"
	"github.com/wgbird/wgbird/internal/labtest"
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(labtest.Main(m, "bench integration tests", lab.Missing(), nil))
}

// TestBenchSmoke runs the failover benchmark small: two modes, two
// repetitions for wgbird, one per reference, a short idle window. It
// proves the benchmark's code works end to end against the real parts;
// the figures are logged, never judged (make bench does the real run).
func TestBenchSmoke(t *testing.T) {
	wgbird := labtest.Wgbird(t)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var progress strings.Builder
	res, err := RunBench(ctx, BenchConfig{
		Lab:        lab.Config{Dir: "/run/wgbs-itest", Prefix: "wgbs", Wgbird: wgbird, Log: labtest.Logger()},
		Modes:      []lab.Mode{lab.LinkDown, lab.Hang},
		Reps:       2,
		RefReps:    1,
		Bound:      5 * time.Second,
		IdleWindow: 2 * time.Second,
		IdlePeers:  100,
		// One hang seen by the clients, takeover off (about 25 s) and on.
		ClientReps:  1,
		ClientModes: []lab.Mode{lab.Hang},
		Progress:    &progress,
	})
	t.Logf("progress:\n%s", progress.String())
	if err != nil {
		t.Fatalf("RunBench: %v", err)
	}
	if lab.NSExists("wgbs-router") {
		t.Error("the bench left its router namespace behind")
	}
	if _, err := os.Stat("/run/wgbs-itest"); err == nil {
		t.Error("the bench left its directory behind")
	}

	// wgbird withdraws both modes and takes the server back, every time.
	wg := res.SeriesOf(SeriesWgbird)
	if wg == nil {
		t.Fatal("no wgbird series")
	}
	for _, mode := range []lab.Mode{lab.LinkDown, lab.Hang} {
		mr, ok := wg.Mode(mode)
		if !ok {
			t.Errorf("wgbird: no %s result", mode)
			continue
		}
		if len(mr.Samples) != 2 {
			t.Errorf("wgbird %s: %d samples, want 2", mode, len(mr.Samples))
		}
		for i, s := range mr.Samples {
			if s.Err != "" || !s.Withdrawn || !s.Returned {
				t.Errorf("wgbird %s rep %d: %+v, want withdrawn and returned", mode, i+1, s)
			}
		}
	}
	// The clients saw the hang: the tunnel answered again, the idle
	// client got an answer, and the repetition was kept as a timeline.
	if res.Client == nil || res.Client.Skipped != "" {
		t.Errorf("client series: %+v", res.Client)
	} else {
		for _, takeover := range []bool{false, true} {
			if cm, ok := res.Client.Mode(lab.Hang, takeover); !ok || len(cm.Samples) != 1 || cm.Samples[0].Err != "" || cm.Samples[0].IdleWait <= 0 {
				t.Errorf("client hang, takeover %v: %+v, want one sample with an idle wait", takeover, cm)
			}
		}
		if len(res.Client.Timelines) != 2 {
			t.Errorf("client hang: %d timelines, want one per takeover setting", len(res.Client.Timelines))
		}
		for _, tl := range res.Client.Timelines {
			if len(tl.Echoes) == 0 || len(tl.Nexthops) < 3 {
				t.Errorf("client hang timeline, takeover %v: %d echoes, nexthops %v; want echoes, the withdraw and the return", tl.Takeover, len(tl.Echoes), tl.Nexthops)
			}
		}
	}
	floor, ok := res.SeriesOf(SeriesFloor).Mode(floorMode)
	if !ok || len(floor.Samples) != 1 || !floor.Samples[0].Withdrawn || !floor.Samples[0].Returned {
		t.Errorf("floor: %+v, want one sample withdrawn and returned", floor)
	}
	// BIRD alone sees a link go down, and nothing of a hung wireguard-go.
	bird := res.SeriesOf(SeriesBird)
	if mr, _ := bird.Mode(lab.LinkDown); len(mr.Samples) != 1 || !mr.Samples[0].Withdrawn {
		t.Errorf("BIRD alone, link-down: %+v, want withdrawn", mr)
	}
	if mr, _ := bird.Mode(lab.Hang); len(mr.Samples) != 1 || mr.Samples[0].Withdrawn || mr.Samples[0].Err != "" {
		t.Errorf("BIRD alone, hang: %+v, want one try, not withdrawn", mr)
	}
	for _, s := range res.Series {
		if s.Series == SeriesExaBGP && s.Skipped != "" {
			t.Logf("ExaBGP not measured: %s", s.Skipped)
			continue
		}
		if s.Skipped != "" {
			t.Errorf("series %s skipped: %s", s.Series, s.Skipped)
		}
		for _, mr := range s.Modes {
			if mr.Errors() > 0 {
				t.Errorf("%s %s: %d repetitions failed: %+v", s.Series, mr.Mode, mr.Errors(), mr.Samples)
			}
		}
	}
	if res.Idle == nil || res.Idle.Skipped != "" || res.Idle.PeakRSS <= 0 {
		t.Errorf("idle cost: %+v, want measured", res.Idle)
	}
	res.Command = "go test -tags integration -run TestBenchSmoke ./internal/labbench"
	md := res.Markdown("github.com/wgbird/wgbird")
	for _, want := range []string{BenchStartMarker, "| link-down | 2/2 |", "| hang |", "#### Idle cost", BenchEndMarker} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	t.Logf("took %s:\n%s", time.Since(start).Round(time.Second), md)
}
