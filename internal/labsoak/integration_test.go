//go:build integration

package labsoak

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wgbird/wgbird/internal/lab"
	"github.com/wgbird/wgbird/internal/labproc"
	"github.com/wgbird/wgbird/internal/labtest"
)

// The soak's lab, brought up by the first test that needs it and torn
// down by TestMain: the fault lab's shape (two servers, one client) with a
// prefix of its own.
const (
	soakLabDir    = "/run/wgss-itest"
	soakLabPrefix = "wgss"
)

var (
	soakLab    *lab.Lab
	soakLabErr error
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(labtest.Main(m, "soak integration tests", lab.Missing(), func() error {
		if soakLab == nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := soakLab.Down(ctx); err != nil {
			return fmt.Errorf("tearing down the lab in %s: %w", soakLab.Dir(), err)
		}
		return nil
	}))
}

// upLab returns the soak's lab, up and routed via both servers, with
// wgbird's thresholds as in internal/lab's tests.
func upLab(t *testing.T) *lab.Lab {
	t.Helper()
	wgbird := labtest.Wgbird(t)
	if soakLab == nil && soakLabErr == nil {
		start := time.Now()
		soakLab, soakLabErr = lab.Up(context.Background(), lab.Config{Dir: soakLabDir, Prefix: soakLabPrefix, Wgbird: wgbird,
			Thresholds: lab.Thresholds{Interval: 500 * time.Millisecond, Rise: 3, Fall: 2}, Log: labtest.Logger()})
		if soakLabErr == nil {
			t.Logf("the soak lab up in %s", time.Since(start).Round(time.Millisecond))
		}
	}
	if soakLabErr != nil {
		t.Fatalf("bringing the soak lab up: %v", soakLabErr)
	}
	if err := healAll(context.Background(), soakLab); err != nil {
		t.Fatal(err)
	}
	if err := soakLab.WaitRouted(context.Background(), 30*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, logs(soakLab))
	}
	return soakLab
}

// logs returns the ends of the wgbird logs, for failure messages.
func logs(l *lab.Lab) string {
	var b strings.Builder
	for _, s := range l.Servers() {
		fmt.Fprintf(&b, "--- %s wgbird.log:\n%s\n", s.Name, labproc.Tail(l.WgbirdLog(s.Name), 15))
	}
	return b.String()
}

// TestSoakShort is `make soak` cut short for CI: fail/heal cycles over both
// servers with random modes, the router's table compared with the truth
// after every step, no client off the service address after any cycle,
// wgbird's goroutines, fds and RSS flat at the end, and
// its heap in use flat (within HeapSlack) from the warm-up (the first
// fifth) to the end. 40 cycles (about 3 minutes) see a leak of 8 KiB a
// cycle, below the 10 KiB a cycle issue 16 found in RSS. The seed is
// printed; WGBIRD_SOAK_SEED repeats a run and WGBIRD_SOAK_CYCLES (default
// 40) changes its length.
func TestSoakShort(t *testing.T) {
	l := upLab(t)
	opts := Options{Cycles: 40, Out: testWriter{t}, FailOnPin: true}
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
	res, err := Run(context.Background(), l, opts)
	if err != nil {
		t.Fatalf("soak (seed %d): %v\n%s", res.Seed, err, logs(l))
	}
	for _, m := range res.Mismatches {
		t.Errorf("seed %d: %s", res.Seed, m)
	}
	for _, x := range res.Leaks {
		t.Errorf("seed %d: not flat: %s", res.Seed, x)
	}
	// Issue 13's target: no client off the service address, ever; after a
	// port change WireGuard's own packets from the new port move the client
	// (logged, not failed: see Pin.PortChange).
	for _, p := range res.Pins {
		if p.PortChange {
			t.Logf("seed %d: %s", res.Seed, p)
			continue
		}
		t.Errorf("seed %d: %s, off the service address", res.Seed, p)
	}
	t.Logf("seed %d: %d of %d client endpoint checks off the service address (target 0)", res.Seed, len(res.Pins), res.EndpointChecks)
	if !res.OK() {
		t.Logf("repeat with WGBIRD_SOAK_SEED=%d\n%s", res.Seed, logs(l))
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

// TestSoakSeesAPinnedClient: the soak's endpoint check reports a client
// whose endpoint is a server's own (here set by hand, as a handshake from
// that server's unicast address would) and puts it back on the service
// address.
func TestSoakSeesAPinnedClient(t *testing.T) {
	l := upLab(t)
	ctx := context.Background()
	direct := l.DirectEndpoint(lab.Servers[0])
	if err := l.SetClientEndpoint(ctx, "client", direct); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.SetClientEndpoint(ctx, "client", l.Endpoint()) })
	var res Result
	line := checkEndpoints(ctx, l, &res, 7, false)
	want := []Pin{{Cycle: 7, Client: "client", Endpoint: direct}}
	if diff := cmp.Diff(want, res.Pins, cmpopts.EquateComparable(netip.AddrPort{})); diff != "" {
		t.Errorf("pins (-want +got):\n%s", diff)
	}
	if !strings.Contains(line, "PINNED client's endpoint is "+direct.String()) {
		t.Errorf("cycle line %q does not name the pin", line)
	}
	if ep, err := l.ClientEndpoint(ctx, "client"); err != nil || ep != l.Endpoint() {
		t.Errorf("after the check the client's endpoint is %s (%v), want it put back on %s", ep, err, l.Endpoint())
	}
	// Put back, the next check finds nothing.
	res = Result{}
	if line := checkEndpoints(ctx, l, &res, 8, false); line != "" || len(res.Pins) != 0 || res.EndpointChecks != len(l.Clients()) {
		t.Errorf("second check: line %q, pins %v, %d checks", line, res.Pins, res.EndpointChecks)
	}
}
