package continuity

import (
	"testing"
	"time"
)

type gateStep struct {
	at    time.Duration // since t0
	do    string        // "request", "began", "done", "poll"
	start bool
	after time.Duration
}

func runGate(t *testing.T, steps []gateStep) {
	t.Helper()
	t0 := time.Unix(1000, 0)
	g := refreshGate{spacing: 100 * time.Millisecond}
	for i, s := range steps {
		now := t0.Add(s.at)
		var start bool
		var after time.Duration
		switch s.do {
		case "request":
			start, after = g.request(now)
		case "poll":
			start, after = g.poll(now)
		case "done":
			start, after = g.done(now)
		case "began":
			g.began(now)
		default:
			t.Fatalf("step %d: unknown %q", i, s.do)
		}
		if start != s.start || after != s.after {
			t.Fatalf("step %d (%s at %s): got start=%v after=%s, want start=%v after=%s", i, s.do, s.at, start, after, s.start, s.after)
		}
	}
}

// The lab's failure: a check's read began 72 ms before the client's
// handshake. The request is not dropped: it is served 100 ms after that
// read began, by a read that starts after the handshake.
func TestRefreshGateDefersWithinSpacing(t *testing.T) {
	runGate(t, []gateStep{
		{at: 0, do: "began"},
		{at: 2 * time.Millisecond, do: "done"},
		{at: 72 * time.Millisecond, do: "request", after: 28 * time.Millisecond},
		{at: 100 * time.Millisecond, do: "poll", start: true},
		// Served: a later poll (a stale timer) starts nothing.
		{at: 103 * time.Millisecond, do: "done"},
		{at: 250 * time.Millisecond, do: "poll"},
	})
}

// A request while a read is in flight (asked before the session) gets a
// read of its own once that one is back, spacing kept.
func TestRefreshGateWaitsForReadInFlight(t *testing.T) {
	runGate(t, []gateStep{
		{at: 0, do: "began"},
		{at: 10 * time.Millisecond, do: "request"},
		{at: 20 * time.Millisecond, do: "request"}, // one read serves both
		{at: 150 * time.Millisecond, do: "done", start: true},
		{at: 160 * time.Millisecond, do: "done"},
	})
	runGate(t, []gateStep{
		{at: 0, do: "began"},
		{at: 10 * time.Millisecond, do: "request"},
		{at: 30 * time.Millisecond, do: "done", after: 70 * time.Millisecond},
		{at: 100 * time.Millisecond, do: "poll", start: true},
	})
}

// The first request reads at once, and so does one after the spacing; a
// check's read that begins after a request serves it.
func TestRefreshGateReadsAtOnce(t *testing.T) {
	runGate(t, []gateStep{
		{at: 0, do: "request", start: true},
		{at: 5 * time.Millisecond, do: "done"},
		{at: 200 * time.Millisecond, do: "request", start: true},
		{at: 205 * time.Millisecond, do: "done"},
		{at: 250 * time.Millisecond, do: "request", after: 50 * time.Millisecond},
		{at: 260 * time.Millisecond, do: "began"},
		{at: 265 * time.Millisecond, do: "done"},
		{at: 300 * time.Millisecond, do: "poll"},
	})
}
