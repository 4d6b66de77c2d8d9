//go:build integration

package lab

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestSoakShort is `make soak` cut short for CI: fail/heal cycles over both
// servers with random modes, the router's table compared with the truth
// after every step, wgbird's goroutines, fds and RSS flat at the end, and
// its heap in use flat (within SoakHeapSlack) from the warm-up (the first
// fifth) to the end. 40 cycles (about 3 minutes) see a leak of 8 KiB a
// cycle, below the 10 KiB a cycle issue 16 found in RSS. The seed is
// printed; WGBIRD_SOAK_SEED repeats a run and WGBIRD_SOAK_CYCLES (default
// 40) changes its length.
func TestSoakShort(t *testing.T) {
	l := faultLab(t)
	opts := SoakOptions{Cycles: 40, Out: testWriter{t}}
	if v := os.Getenv("WGBIRD_SOAK_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("WGBIRD_SOAK_CYCLES: %v", err)
		}
		opts.Cycles = n
	}
	if v := os.Getenv("WGBIRD_SOAK_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("WGBIRD_SOAK_SEED: %v", err)
		}
		opts.Seed = n
	}
	res, err := l.Soak(context.Background(), opts)
	if err != nil {
		t.Fatalf("soak (seed %d): %v\n%s", res.Seed, err, l.logs())
	}
	for _, m := range res.Mismatches {
		t.Errorf("seed %d: %s", res.Seed, m)
	}
	for _, x := range res.Leaks {
		t.Errorf("seed %d: not flat: %s", res.Seed, x)
	}
	if !res.OK() {
		t.Logf("repeat with WGBIRD_SOAK_SEED=%d\n%s", res.Seed, l.logs())
	}
}

// testWriter writes each line to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log(line)
	}
	return len(p), nil
}
