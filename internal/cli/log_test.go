package cli

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/daemon"
	"github.com/wgbird/wgbird/internal/fakes"
)

// logBuffer is a log sink safe for the daemon's goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) count(s string) int { return strings.Count(l.String(), s) }

func TestLoggerTimestamps(t *testing.T) {
	for _, tt := range []struct {
		journal  string
		wantTime bool
	}{{"", true}, {"8:12345", false}} {
		var b bytes.Buffer
		log := newLogger(&Env{Stderr: &b, Getenv: func(k string) string {
			if k == "JOURNAL_STREAM" {
				return tt.journal
			}
			return ""
		}})
		log.Info("transition", "from", "announced", "to", "withdrawn", "reason", "link: link wg0 not found")
		line := b.String()
		if got := strings.HasPrefix(line, "time="); got != tt.wantTime {
			t.Errorf("JOURNAL_STREAM=%q: time stamped %v, want %v: %q", tt.journal, got, tt.wantTime, line)
		}
		if !strings.Contains(line, `level=INFO msg=transition from=announced to=withdrawn reason="link: link wg0 not found"`) {
			t.Errorf("not key=value: %q", line)
		}
	}
}

// waitFor polls cond for up to 10 s: the daemon's loop runs every 5 ms.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i == 1000 {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLogsOnce runs a daemon through a BIRD outage, a transition and a
// reconcile correction, and checks that each is logged once, not once
// per interval while nothing changes.
func TestLogsOnce(t *testing.T) {
	vip := netip.MustParsePrefix("192.168.20.1/24")
	cfg := &config.Config{Services: []config.Service{{
		Name: "wg0", Interface: "wg0", VIPs: []netip.Prefix{vip}, Protocols: []string{"wg_vip4"},
		Interval: 5 * time.Millisecond, FastInterval: 5 * time.Millisecond, Timeout: time.Second,
		Rise: 1, Fall: 1, MinPeers: 1,
	}}}
	logs := &logBuffer{}
	b := fakes.NewBIRD(fakes.Static("wg_vip4", true))
	links := fakes.NewLinks(fakes.UpLink(vip))
	d, err := daemon.New(cfg, daemon.Deps{
		BIRD:      b,
		WireGuard: fakes.NewWireGuard(fakes.Device(51820, 1, time.Now())),
		Links:     links,
		Exec:      fakes.Exec(true, ""),
		Log:       newLogger(&Env{Stderr: logs, Getenv: func(string) string { return "" }}),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	passes := func() int { return strings.Count(strings.Join(b.Commands(), "\n"), "show protocols") }
	after := func(n int) func() bool { start := passes(); return func() bool { return passes() >= start+n } }

	waitFor(t, "BIRD's state learned", func() bool { return logs.count("BIRD state learned") == 1 })

	// A BIRD outage across many intervals: one error line.
	b.SetError(errors.New("dial unix /run/bird/bird.ctl: connect: connection refused"))
	waitFor(t, "20 passes with BIRD down", after(20))
	if n := logs.count(`msg="BIRD call failed"`); n != 1 {
		t.Errorf("BIRD error logged %d times over 20 passes, want once:\n%s", n, logs)
	}
	b.SetError(nil)
	waitFor(t, "BIRD back", func() bool { return logs.count("BIRD answers again") == 1 })
	waitFor(t, "20 passes with BIRD up", after(20))
	if n := logs.count("BIRD answers again"); n != 1 {
		t.Errorf("recovery logged %d times, want once", n)
	}

	// The VIP goes: one transition line with its reason, however many
	// passes it stays gone.
	links.Set(fakes.UpLink())
	waitFor(t, "withdrawal", func() bool { return logs.count("msg=transition") == 1 })
	waitFor(t, "20 passes withdrawn", after(20))
	if n := logs.count("msg=transition"); n != 1 {
		t.Errorf("%d transition lines while nothing changed, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), `msg=transition service=wg0 from=announced to=withdrawn reason="link: VIP 192.168.20.1/24 missing on wg0"`) {
		t.Errorf("transition logged without its reason:\n%s", logs)
	}

	// Someone enables the protocol behind wgbird's back: one correction.
	if err := b.Enable(ctx, "wg_vip4"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reconcile", func() bool { return logs.count("reconcile: BIRD differs") == 1 })
	waitFor(t, "20 passes after the correction", after(20))
	if n := logs.count("reconcile: BIRD differs"); n != 1 {
		t.Errorf("correction logged %d times, want once:\n%s", n, logs)
	}
}
