package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/wireguard"
)

// runRig runs r's daemon until the test ends and waits for its first pass.
func runRig(t *testing.T, r *rig) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- r.d.Run(ctx, func() { close(ready) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		t.Fatal("no first pass")
	}
}

// waitDisabled waits up to timeout for the withdrawal of wg_vip4 and
// returns when it came.
func waitDisabled(t *testing.T, r *rig, timeout time.Duration) time.Time {
	t.Helper()
	select {
	case name := <-r.bird.Disabled():
		if name != "wg_vip4" {
			t.Fatalf("disabled %q", name)
		}
		return time.Now()
	case <-time.After(timeout):
		t.Fatalf("no withdrawal within %s", timeout)
	}
	return time.Time{}
}

// TestHangSeenBetweenFullReads: with the next full read an hour away, a
// hung wireguard-go is seen by the liveness check every fast_interval,
// and the passes it starts withdraw the service after fall failures.
func TestHangSeenBetweenFullReads(t *testing.T) {
	r := newRig(t, map[string]bool{"wg_vip4": true}, func(s *config.Service) {
		s.Interval, s.FastInterval, s.Timeout = time.Hour, 20*time.Millisecond, 50*time.Millisecond
	})
	runRig(t, r)
	time.Sleep(100 * time.Millisecond) // liveness checks of a healthy device
	reads0, alive0 := r.wg.Reads(), r.wg.AliveCount()
	if reads0 != 1 || alive0 < 2 {
		t.Fatalf("healthy for 100 ms: %d full reads and %d liveness checks, want 1 (the first pass) and several", reads0, alive0)
	}

	hung := &wireguard.TimeoutError{Device: "wg0", After: 50 * time.Millisecond, Err: context.DeadlineExceeded}
	r.wg.Set(nil, hung)
	r.wg.SetAlive(hung)
	start := time.Now()
	at := waitDisabled(t, r, 5*time.Second)
	reads, alive := r.wg.Reads(), r.wg.AliveCount()
	t.Logf("withdrawn %s after the hang; %d full reads, %d liveness checks", at.Sub(start).Round(time.Millisecond), reads-reads0, alive-alive0)
	if reads-reads0 != 2 {
		t.Errorf("full reads after the hang = %d, want 2 (fall 2), both started by the liveness check", reads-reads0)
	}
	if st := r.svc.Status(); st.State != "withdrawn" || st.Reason == "" {
		t.Errorf("status %q %q, want withdrawn with a reason", st.State, st.Reason)
	}
	// Withdrawn, the liveness check rests: only scheduled passes read.
	alive = r.wg.AliveCount()
	time.Sleep(100 * time.Millisecond)
	if after := r.wg.AliveCount(); after != alive {
		t.Errorf("%d liveness checks while withdrawn, want none", after-alive)
	}
}

// TestPeerChangeSeenWithinInterval: the liveness check cannot see the
// peer list; the scheduled full read every interval does, so removing
// every peer withdraws within interval + (fall-1) × fast_interval.
func TestPeerChangeSeenWithinInterval(t *testing.T) {
	const interval, fast = 300 * time.Millisecond, 20 * time.Millisecond
	r := newRig(t, map[string]bool{"wg_vip4": true}, func(s *config.Service) {
		s.Interval, s.FastInterval, s.Timeout = interval, fast, 50*time.Millisecond
	})
	runRig(t, r)
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	r.wg.SetPeers(0)
	alive0 := r.wg.AliveCount()
	at := waitDisabled(t, r, 5*time.Second)
	alive := r.wg.AliveCount()
	took := at.Sub(start)
	t.Logf("withdrawn %s after the peers went (bound %s), %d liveness checks meanwhile", took.Round(time.Millisecond), interval+fast, alive-alive0)
	if took > interval+fast+200*time.Millisecond {
		t.Errorf("withdrawn %s after the peers went, want within interval + fast_interval = %s (and scheduling)", took, interval+fast)
	}
	if alive == alive0 {
		t.Errorf("no liveness check ran while waiting for the full read")
	}
}
