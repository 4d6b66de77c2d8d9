package labbench

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wgbird/wgbird/internal/lab"
)

func TestParseTransitions(t *testing.T) {
	log := `time=2026-12-01T10:21:03.111Z level=INFO msg="BIRD state learned" state=withdrawn
time=2026-12-01T10:21:09.229Z level=INFO msg=transition service=wg0 from=withdrawn to=announced reason="3 healthy in a row"
time=2026-12-01T10:21:19.303Z level=INFO msg=transition service=wg0 from=announced to=withdrawn reason="2 unhealthy in a row: wireguard: \"wg0\" timed out"
time=2026-12-01T10:21:19.400Z level=INFO msg="takeover started" peer=abc
time=2026-12-01T10:30:00.000Z level=INFO msg=transition service=wg0 from=withdrawn to=announced reason="later"
garbage line
`
	from, _ := time.Parse(time.RFC3339, "2026-12-01T10:21:05Z")
	to, _ := time.Parse(time.RFC3339, "2026-12-01T10:22:00Z")
	got := ParseTransitions("s1", log, from, to)
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339Nano, s); return v }
	want := []Transition{
		{At: at("2026-12-01T10:21:09.229Z"), Server: "s1", Text: "announced: 3 healthy in a row"},
		{At: at("2026-12-01T10:21:19.303Z"), Server: "s1", Text: `withdrawn: 2 unhealthy in a row: wireguard: "wg0" timed out`},
		{At: at("2026-12-01T10:21:19.400Z"), Server: "s1", Text: "takeover started"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseTransitions (-want +got):\n%s", diff)
	}
}

func TestClientMarkdown(t *testing.T) {
	smp := func(withdraw, failover, failback, idle time.Duration, pinned bool) ClientSample {
		return ClientSample{Withdraw: withdraw, Failover: failover, Failback: failback, IdleWait: idle, Pinned: pinned}
	}
	r := &ClientResult{Reps: 2, Setup: "Set-up.", TakeoverNA: "not in this build",
		Modes: []ClientModeResult{
			{Mode: lab.Hang, Samples: []ClientSample{smp(600*time.Millisecond, 15*time.Second, 0, 15*time.Second, false), smp(700*time.Millisecond, 15200*time.Millisecond, 0, 14*time.Second, true)}},
			{Mode: lab.Kill, Samples: []ClientSample{smp(time.Millisecond, 15*time.Second, 15*time.Second, 15*time.Second, false), {Err: "boom"}}},
		},
		Pictures: []Picture{{Title: "hang on s1", Path: "internal/labbench/pictures/timeline-hang-takeover-off.svg"}},
	}
	var b strings.Builder
	r.markdown(&b)
	md := b.String()
	for _, want := range []string{
		"| hang | 600 ms | 15.00 s / 15.20 s | – | 0.0 ms / 0.0 ms | – | 14.00 s / 15.00 s | – | – | – | off 1/2 |",
		"| kill (1 failed) | 1.0 ms | 15.00 s / 15.00 s |",
		"| hang, takeover off: failover outage ≤ withdraw + 200 ms (p50) | 15.00 s vs 600 ms + 200 ms | **not met** |",
		"| kill, takeover off: failback outage ≤ 200 ms | p50 15.00 s, p95 15.00 s | **not met** |",
		"![hang on s1](internal/labbench/pictures/timeline-hang-takeover-off.svg)",
		"Takeover on: not measured: not in this build.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
