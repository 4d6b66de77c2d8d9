package daemon

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/health"
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
// every peer withdraws within interval + (fall-1) × fast_interval, and
// 1.5 × interval + (fall-1) × fast_interval for the first read after a
// change of state (here the start), whose pass waits for the clock grid.
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
	bound := interval*3/2 + fast
	t.Logf("withdrawn %s after the peers went (bound %s), %d liveness checks meanwhile", took.Round(time.Millisecond), bound, alive-alive0)
	if took > bound+100*time.Millisecond {
		t.Errorf("withdrawn %s after the peers went, want within 1.5 × interval + fast_interval = %s (and scheduling)", took, bound)
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

// passTimes is an Observer that records when each evaluation came.
type passTimes struct {
	mu sync.Mutex
	at []time.Time
}

func (p *passTimes) Evaluated(health.Evaluation) {
	p.mu.Lock()
	p.at = append(p.at, time.Now())
	p.mu.Unlock()
}
func (p *passTimes) Transitioned(string, health.Transition) {}

// TestPassesOnTheGrid: an announced, steady service's passes fall on
// whole multiples of interval on the clock (tick.Until), the liveness
// checks half an interval after them, so both share the process's
// wake-ups with every other periodic task.
func TestPassesOnTheGrid(t *testing.T) {
	const interval = 200 * time.Millisecond
	r := newRig(t, map[string]bool{"wg_vip4": true}, func(s *config.Service) {
		s.Interval, s.FastInterval, s.LivenessInterval = interval, 20*time.Millisecond, interval/2
	})
	obs := &passTimes{}
	r.d.deps.Observer = obs
	runRig(t, r)
	time.Sleep(5 * interval)
	obs.mu.Lock()
	at := slices.Clone(obs.at)
	obs.mu.Unlock()
	if len(at) < 4 {
		t.Fatalf("%d passes in 5 intervals, want at least 4", len(at))
	}
	// The first pass is at start-up; every later one on the grid.
	for i, a := range at[1:] {
		off := a.Sub(a.Truncate(interval))
		if off > 30*time.Millisecond { // scheduling
			t.Errorf("pass %d came %s after a multiple of %s, want on it", i+2, off, interval)
		}
	}
	if n := r.wg.AliveCount(); n < 2 {
		t.Errorf("%d liveness checks in 5 intervals, want about one between each two passes", n)
	}
}
