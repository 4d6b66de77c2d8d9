package tick

import (
	"testing"
	"time"
)

// Every periodic wait ends on the same clock grid, at least half a period
// away.
func TestUntil(t *testing.T) {
	base := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	p := 100 * time.Millisecond
	for _, c := range []struct {
		at, want time.Duration
	}{
		{0, 100 * time.Millisecond},
		{10 * time.Millisecond, 90 * time.Millisecond},
		{49 * time.Millisecond, 51 * time.Millisecond},
		{50 * time.Millisecond, 50 * time.Millisecond},
		{51 * time.Millisecond, 149 * time.Millisecond},
		{99 * time.Millisecond, 101 * time.Millisecond},
	} {
		if got := Until(base.Add(c.at), p); got != c.want {
			t.Errorf("Until(+%v) = %v, want %v", c.at, got, c.want)
		}
	}
	if got := Until(base, 0); got != 0 {
		t.Errorf("Until with no period = %v, want 0", got)
	}
	// A whole second is a multiple of every shorter period that divides
	// it: the 1 s and 500 ms grids meet there.
	if got := Until(base.Add(3*time.Millisecond), 500*time.Millisecond); got != 497*time.Millisecond {
		t.Errorf("Until(+3ms, 500ms) = %v, want 497ms", got)
	}
}
