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
// hung wireguard-go is seen by the liveness check every liveness_interval,
// and the passes it starts withdraw the service after fall failures.
func TestHangSeenBetweenFullReads(t *testing.T) {
	r := newRig(t, map[string]bool{"wg_vip4": true}, func(s *config.Service) {
		s.Interval, s.FastInterval, s.Timeout = time.Hour, 20*time.Millisecond, 50*time.Millisecond
		s.LivenessInterval = 20 * time.Millisecond
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
		s.LivenessInterval = fast
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

// The liveness checks fall every liveness_interval after the last pass
// began, never within half a liveness_interval of now or of the next
// pass.
func TestNextLiveness(t *testing.T) {
	pass := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	for _, c := range []struct {
		name      string
		now, next time.Duration // after pass
		every     time.Duration
		want      time.Duration // after pass; -1: none
	}{
		{"right after the pass", 3 * ms, 1000 * ms, 500 * ms, 500 * ms},
		{"after the first check: the next is the pass", 501 * ms, 1000 * ms, 500 * ms, -1},
		{"100 ms checks, 1 s interval", 2 * ms, 1000 * ms, 100 * ms, 100 * ms},
		{"100 ms checks, the last before the pass", 801 * ms, 1000 * ms, 100 * ms, 900 * ms},
		{"100 ms checks, none 50 ms before the pass", 901 * ms, 1000 * ms, 100 * ms, -1},
		{"a check late by most of a period: the next is a full half away", 970 * ms, 3000 * ms, 500 * ms, 1500 * ms},
		{"no period", 0, 1000 * ms, 0, -1},
	} {
		at, ok := nextLiveness(pass.Add(c.now), pass, pass.Add(c.next), c.every)
		got := time.Duration(-1)
		if ok {
			got = at.Sub(pass)
		}
		if got != c.want {
			t.Errorf("%s: nextLiveness = %v after the pass, want %v", c.name, got, c.want)
		}
	}
}
