package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/wgbird/wgbird/internal/bird"
	"github.com/wgbird/wgbird/internal/fakes"
	"github.com/wgbird/wgbird/internal/health"
	"github.com/wgbird/wgbird/internal/readme"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// exercise touches every metric so that every family is exported.
func exercise(m *Metrics) {
	ok := health.Result{Checks: []health.Check{
		{Name: "link", OK: true, Took: 50 * time.Microsecond},
		{Name: "wireguard", OK: true, Took: 2 * time.Millisecond},
		{Name: "exec:nginx", OK: false, Detail: "exit status 1", Took: 300 * time.Millisecond},
	}}
	m.Evaluated(health.Evaluation{
		Service: "wg0", Result: ok, State: health.Announced,
		Device: &health.DeviceStats{Peers: 3, NewestHandshake: t0.Add(-14 * time.Second)}, At: t0,
	})
	m.Transitioned("wg0", health.Transition{From: health.Announced, To: health.Withdrawn, Cause: health.CauseUnhealthy, Count: 2, Detail: "exec:nginx: exit status 1"})
	m.TakeoverStarted("wg0", "readd", "ok")
	m.TakeoverAnswered("wg0", 23*time.Millisecond)
	b := fakes.NewBIRD(fakes.Static("wg_vip4", true))
	ib := m.InstrumentBIRD(b)
	ib.Protocols(context.Background())
	ib.Disable(context.Background(), "wg_vip4")
	ib.Enable(context.Background(), "nosuch")
}

func TestPromlint(t *testing.T) {
	m := New("v1.0.0")
	exercise(m)
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// TestDocumented keeps README's metrics section complete: every wgbird
// metric is in it, and it documents none that does not exist.
func TestDocumented(t *testing.T) {
	doc := readmeSection(t, "### Metrics")
	m := New("v1.0.0")
	exercise(m)
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, namespace+"_") {
			continue
		}
		exported[name] = true
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("README's metrics section does not document %s", name)
		}
	}
	for _, f := range strings.Fields(strings.NewReplacer("`", " ", "{", " ", "|", " ").Replace(string(doc))) {
		if strings.HasPrefix(f, namespace+"_") && !exported[f] && !strings.HasSuffix(f, "_bucket") {
			t.Errorf("README's metrics section documents %s, which is not exported", f)
		}
	}
}

func TestEvaluated(t *testing.T) {
	m := New("test")
	exercise(m)
	want := map[string]float64{
		"healthy":   0,
		"announced": 1,
		"drained":   0,
		"peers":     3,
		"age":       14,
		"stamp":     float64(t0.Add(-14 * time.Second).Unix()),
		"link_ok":   1,
		"exec_ok":   0,
		"exec_fail": 1,
	}
	got := map[string]float64{
		"healthy":   testutil.ToFloat64(m.healthy.WithLabelValues("wg0")),
		"announced": testutil.ToFloat64(m.announced.WithLabelValues("wg0")),
		"drained":   testutil.ToFloat64(m.drained.WithLabelValues("wg0")),
		"peers":     testutil.ToFloat64(m.peers.WithLabelValues("wg0")),
		"age":       testutil.ToFloat64(m.handshakeAge.WithLabelValues("wg0")),
		"stamp":     testutil.ToFloat64(m.handshakeTime.WithLabelValues("wg0")),
		"link_ok":   testutil.ToFloat64(m.checkOK.WithLabelValues("wg0", "link")),
		"exec_ok":   testutil.ToFloat64(m.checkOK.WithLabelValues("wg0", "exec:nginx")),
		"exec_fail": testutil.ToFloat64(m.checkFailures.WithLabelValues("wg0", "exec:nginx")),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}

	// The link vanishes: the WireGuard check is skipped and no device is
	// read. Their old values must go, not linger.
	m.Evaluated(health.Evaluation{Service: "wg0", State: health.Withdrawn, At: t0.Add(time.Second),
		Result: health.Result{Checks: []health.Check{{Name: "link", Hard: true, Detail: "link wg0 not found"}}}})
	if n := testutil.CollectAndCount(m.checkOK); n != 1 {
		t.Errorf("wgbird_check_ok has %d series after the WireGuard check was skipped, want 1 (link)", n)
	}
	if n := testutil.CollectAndCount(m.peers) + testutil.CollectAndCount(m.handshakeAge); n != 0 {
		t.Errorf("WireGuard series still exported without a device: %d", n)
	}
}

func TestNoHandshakeYet(t *testing.T) {
	m := New("test")
	m.Evaluated(health.Evaluation{Service: "wg0", Device: &health.DeviceStats{Peers: 2}, At: t0})
	if got := testutil.ToFloat64(m.peers.WithLabelValues("wg0")); got != 2 {
		t.Errorf("peers = %v, want 2", got)
	}
	if n := testutil.CollectAndCount(m.handshakeAge); n != 0 {
		t.Errorf("handshake age exported although no peer ever shook hands")
	}
}

// TestReasonClass feeds the real state machine, so that a change of its
// causes that would put every transition into "other" fails here.
func TestReasonClass(t *testing.T) {
	good := health.Result{Checks: []health.Check{{Name: "wireguard", OK: true}}}
	soft := health.Result{Checks: []health.Check{{Name: "wireguard", Detail: "0 peers, want at least 1"}}}
	hard := health.Result{Checks: []health.Check{{Name: "link", Hard: true, Detail: "link wg0 not found"}}}
	tests := []struct {
		name      string
		announced bool
		inputs    []health.Input
		want      string
	}{
		{"rise", false, []health.Input{{Result: good}, {Result: good}}, ReasonRecovered},
		{"fall", true, []health.Input{{Result: good}, {Result: soft}, {Result: soft}}, ReasonUnhealthy},
		{"hard", true, []health.Input{{Result: good}, {Result: hard}}, ReasonHardFailure},
		{"startup", true, []health.Input{{Result: soft}}, ReasonUnhealthyAtStartup},
		{"drain", true, []health.Input{{Result: good, Drained: true, DrainReason: "kernel upgrade"}}, ReasonDrained},
		{"drain without reason", true, []health.Input{{Result: good, Drained: true}}, ReasonDrained},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := health.NewMachine(health.Thresholds{Rise: 2, Fall: 2})
			m.Start(tt.announced)
			var last *health.Transition
			for _, in := range tt.inputs {
				if tr, ok := m.Observe(in); ok {
					last = &tr
				}
			}
			if last == nil {
				t.Fatal("no transition")
			}
			if got := ReasonClass(*last); got != tt.want {
				t.Errorf("ReasonClass(%q) = %q, want %q", last.Reason(), got, tt.want)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

var _ net.Error = timeoutErr{}

func TestErrorCode(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("disabling protocol %q: %w", "x", &bird.ReplyError{Code: 8007, Text: "Access denied"}), "8007"},
		{&bird.ReplyError{Code: 9001, Text: "syntax error"}, "9001"},
		{fmt.Errorf("reading: %w", context.DeadlineExceeded), "timeout"},
		{fmt.Errorf("reading: %w", os.ErrDeadlineExceeded), "timeout"},
		{&net.OpError{Op: "read", Err: timeoutErr{}}, "timeout"},
		{errors.New("dial unix /run/bird/bird.ctl: connect: no such file or directory"), "connection"},
	}
	for _, tt := range tests {
		if got := ErrorCode(tt.err); got != tt.want {
			t.Errorf("ErrorCode(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestInstrumentBIRD(t *testing.T) {
	m := New("test")
	b := fakes.NewBIRD(fakes.Static("wg_vip4", false))
	ib := m.InstrumentBIRD(b)
	ctx := context.Background()
	if err := ib.Enable(ctx, "wg_vip4"); err != nil {
		t.Fatal(err)
	}
	if err := ib.Disable(ctx, "nosuch"); err == nil {
		t.Fatal("disabling an unknown protocol did not fail")
	}
	b.SetError(fmt.Errorf("reading: %w", context.DeadlineExceeded))
	if _, err := ib.Protocols(ctx); err == nil {
		t.Fatal("no error from a failing BIRD")
	}
	want := map[string]float64{"disable/8003": 1, "show_protocols/timeout": 1}
	got := map[string]float64{
		"disable/8003":           testutil.ToFloat64(m.birdErrors.WithLabelValues("disable", "8003")),
		"show_protocols/timeout": testutil.ToFloat64(m.birdErrors.WithLabelValues("show_protocols", "timeout")),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"enable wg_vip4", "disable nosuch", "show protocols"}, b.Commands()); diff != "" {
		t.Errorf("commands passed through (-want +got):\n%s", diff)
	}
	if n := testutil.CollectAndCount(m.birdDuration); n != 4 {
		t.Errorf("%d duration series, want 4 (one per command)", n)
	}
}

func readmeSection(t *testing.T, heading string) string {
	t.Helper()
	s, err := readme.Section(heading)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDurationOncePerRun: a result an evaluation reuses is timed once;
// its failure still counts in every evaluation.
func TestDurationOncePerRun(t *testing.T) {
	m := New("test")
	for i := range 3 {
		c := health.Check{Name: "exec:nginx", Detail: "exit status 1", Took: 300 * time.Millisecond, Reused: i > 0}
		m.Evaluated(health.Evaluation{Service: "wg0", Result: health.Result{Checks: []health.Check{c}}, At: t0})
	}
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var runs uint64
	for _, mf := range mfs {
		if mf.GetName() == "wgbird_check_duration_seconds" {
			for _, mt := range mf.GetMetric() {
				runs += mt.GetHistogram().GetSampleCount()
			}
		}
	}
	if runs != 1 {
		t.Errorf("check_duration_seconds has %d samples, want 1 (one run)", runs)
	}
	if got := testutil.ToFloat64(m.checkFailures.WithLabelValues("wg0", "exec:nginx")); got != 3 {
		t.Errorf("check_failures_total = %v, want 3 (every evaluation)", got)
	}
}
