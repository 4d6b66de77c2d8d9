package health

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	good = Result{Checks: []Check{{Name: "wireguard", OK: true}, {Name: "link", OK: true}}}
	soft = Result{Checks: []Check{{Name: "wireguard", Detail: "0 peers, want at least 1"}, {Name: "link", OK: true}}}
	hard = Result{Checks: []Check{{Name: "wireguard", OK: true}, {Name: "link", Hard: true, Detail: "link wg0 not found"}}}
)

// step is one observation and the transition it must cause ("" for none).
type step struct {
	in   Input
	want string // "from->to" or ""
}

func obs(r Result) Input { return Input{Result: r} }

func TestMachine(t *testing.T) {
	drained := Input{Result: good, Drained: true, DrainReason: "maintenance"}
	tests := []struct {
		name      string
		announced bool // BIRD's state at start
		rise      int
		fall      int
		steps     []step
	}{
		{"start announced, healthy: keep announcing", true, 3, 2, []step{
			{obs(good), ""}, {obs(good), ""},
		}},
		{"start announced, unhealthy: withdraw at once", true, 3, 2, []step{
			{obs(soft), "announced->withdrawn"},
		}},
		{"start withdrawn: announce after rise", false, 3, 2, []step{
			{obs(good), ""}, {obs(good), ""}, {obs(good), "withdrawn->announced"},
		}},
		{"start withdrawn, unhealthy: stay", false, 3, 2, []step{
			{obs(soft), ""}, {obs(soft), ""},
		}},
		{"rise resets on a failure", false, 3, 2, []step{
			{obs(good), ""}, {obs(good), ""}, {obs(soft), ""},
			{obs(good), ""}, {obs(good), ""}, {obs(good), "withdrawn->announced"},
		}},
		{"fall after two unhealthy", true, 3, 2, []step{
			{obs(good), ""}, {obs(soft), ""}, {obs(soft), "announced->withdrawn"},
		}},
		{"fall resets on a success", true, 3, 2, []step{
			{obs(good), ""}, {obs(soft), ""}, {obs(good), ""}, {obs(soft), ""}, {obs(soft), "announced->withdrawn"},
		}},
		{"hard failure skips fall", true, 3, 5, []step{
			{obs(good), ""}, {obs(hard), "announced->withdrawn"},
		}},
		{"after withdrawal, rise counts from zero", true, 2, 1, []step{
			{obs(good), ""}, {obs(soft), "announced->withdrawn"}, {obs(good), ""}, {obs(good), "withdrawn->announced"},
		}},
		{"drain withdraws a healthy service at once", true, 3, 2, []step{
			{obs(good), ""}, {drained, "announced->withdrawn"}, {drained, ""},
		}},
		{"drain at start-up withdraws", true, 3, 2, []step{
			{drained, "announced->withdrawn"},
		}},
		{"undrain needs rise healthy after the drain", true, 2, 2, []step{
			{drained, "announced->withdrawn"}, {drained, ""}, {obs(good), ""}, {obs(good), "withdrawn->announced"},
		}},
		{"rise and fall of 1", false, 1, 1, []step{
			{obs(good), "withdrawn->announced"}, {obs(soft), "announced->withdrawn"},
		}},
		{"no checks is not healthy", true, 1, 1, []step{
			{obs(Result{}), "announced->withdrawn"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMachine(Thresholds{Rise: tt.rise, Fall: tt.fall})
			m.Start(tt.announced)
			var want, got []string
			for _, s := range tt.steps {
				want = append(want, s.want)
				tr, ok := m.Observe(s.in)
				if ok {
					got = append(got, tr.From.String()+"->"+tr.To.String())
				} else {
					got = append(got, "")
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("transitions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReasons(t *testing.T) {
	tests := []struct {
		name  string
		start bool
		fall  int
		steps []Input
		want  string
		cause Cause
	}{
		{"hard", true, 2, []Input{obs(hard)}, "link: link wg0 not found", CauseHardFailure},
		{"startup", true, 2, []Input{obs(soft)}, "unhealthy at start-up: wireguard: 0 peers, want at least 1", CauseUnhealthyAtStartup},
		{"fall", true, 2, []Input{obs(good), obs(soft), obs(soft)}, "2 unhealthy in a row: wireguard: 0 peers, want at least 1", CauseUnhealthy},
		{"rise", false, 2, []Input{obs(good), obs(good), obs(good)}, "3 healthy in a row", CauseRecovered},
		{"drain", true, 2, []Input{{Result: good, Drained: true, DrainReason: "kernel upgrade"}}, "drained: kernel upgrade", CauseDrained},
		{"drain without reason", true, 2, []Input{{Result: good, Drained: true}}, "drained", CauseDrained},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMachine(Thresholds{Rise: 3, Fall: tt.fall})
			m.Start(tt.start)
			var last Transition
			for _, in := range tt.steps {
				if tr, ok := m.Observe(in); ok {
					last = tr
				}
			}
			if last.Reason() != tt.want || last.Cause != tt.cause {
				t.Errorf("transition %+v: reason %q, cause %v; want %q, %v", last, last.Reason(), last.Cause, tt.want, tt.cause)
			}
		})
	}
}

func TestPending(t *testing.T) {
	m := NewMachine(Thresholds{Rise: 3, Fall: 2})
	m.Start(true)
	m.Observe(obs(good))
	if m.Pending() {
		t.Fatal("Pending after a healthy observation while announced")
	}
	m.Observe(obs(soft))
	if !m.Pending() {
		t.Fatal("not Pending after one unhealthy observation while announced")
	}
	m.Observe(obs(soft))
	if m.Pending() || m.State() != Withdrawn {
		t.Fatalf("after fall: Pending %v, State %v; want false, withdrawn", m.Pending(), m.State())
	}
	m.Observe(obs(good))
	if !m.Pending() {
		t.Fatal("not Pending while rising")
	}
}

func TestObserveBeforeStartPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Observe before Start did not panic")
		}
	}()
	NewMachine(Thresholds{Rise: 1, Fall: 1}).Observe(obs(good))
}

func TestResult(t *testing.T) {
	if (Result{}).Healthy() {
		t.Error("empty result is healthy")
	}
	if !good.Healthy() || soft.Healthy() || hard.Healthy() {
		t.Error("Healthy wrong")
	}
	if good.Hard() || soft.Hard() || !hard.Hard() {
		t.Error("Hard wrong")
	}
	if got := good.Reason(); got != "all checks passed" {
		t.Errorf("Reason = %q", got)
	}
}
