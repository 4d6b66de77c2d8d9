package health

import (
	"fmt"
	"strings"
	"time"
)

// Check is the outcome of one health check of a service.
type Check struct {
	// Name identifies the check: "wireguard", "link", "exec:NAME".
	Name string `json:"name"`
	// OK reports whether the check passed.
	OK bool `json:"ok"`
	// Hard marks a failure that means a part is gone (device, link or VIP):
	// the service is withdrawn at once, without waiting for Fall.
	Hard bool `json:"hard"`
	// Detail explains the result to a person, e.g. "VIP 192.168.20.1/24
	// missing on wg0".
	Detail string `json:"detail"`
	// Took is how long the check ran.
	Took time.Duration `json:"took_ns"`
}

// Result is one evaluation of a service: the AND of its checks.
type Result struct {
	Checks []Check
}

// Healthy reports whether every check passed. A result without checks is
// not healthy: nothing was verified.
func (r Result) Healthy() bool {
	if len(r.Checks) == 0 {
		return false
	}
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// Hard reports whether a failed check is a hard failure.
func (r Result) Hard() bool {
	for _, c := range r.Checks {
		if !c.OK && c.Hard {
			return true
		}
	}
	return false
}

// Reason summarises the result in one line: the details of the failed
// checks, or that all passed.
func (r Result) Reason() string {
	if len(r.Checks) == 0 {
		return "no checks evaluated"
	}
	var failed []string
	for _, c := range r.Checks {
		if !c.OK {
			failed = append(failed, c.Name+": "+c.Detail)
		}
	}
	if len(failed) == 0 {
		return "all checks passed"
	}
	return strings.Join(failed, "; ")
}

// State is what a service is doing towards BIRD.
type State int

const (
	// Unknown: wgbird has not yet learned BIRD's state.
	Unknown State = iota
	// Withdrawn: the controlled protocols are disabled.
	Withdrawn
	// Announced: the controlled protocols are enabled.
	Announced
)

func (s State) String() string {
	switch s {
	case Unknown:
		return "unknown"
	case Withdrawn:
		return "withdrawn"
	case Announced:
		return "announced"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Thresholds damp flapping: Rise healthy results in a row announce, Fall
// unhealthy results in a row withdraw.
type Thresholds struct {
	Rise int
	Fall int
}

// Input is one observation fed to a Machine.
type Input struct {
	Result Result
	// Drained withdraws whatever the health.
	Drained bool
	// DrainReason is logged with the transition when Drained.
	DrainReason string
}

// Transition is a change of state with its reason.
type Transition struct {
	From, To State
	Reason   string
}

// Machine is the per-service state machine. The zero value is not usable;
// create one with NewMachine and call Start once BIRD's state is known.
type Machine struct {
	t       Thresholds
	state   State
	startup bool // the first observation after Start has not happened yet
	ok, bad int  // consecutive healthy / unhealthy observations
}

// NewMachine returns a Machine in state Unknown. Thresholds below 1 count
// as 1.
func NewMachine(t Thresholds) *Machine {
	if t.Rise < 1 {
		t.Rise = 1
	}
	if t.Fall < 1 {
		t.Fall = 1
	}
	return &Machine{t: t}
}

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Started reports whether Start has been called.
func (m *Machine) Started() bool { return m.state != Unknown }

// Start sets the initial state from what BIRD does now, so that start-up
// moves no clients needlessly: an announcing service keeps announcing if
// its first observation is healthy and is withdrawn at once if not; a
// withdrawn one is announced after Rise healthy observations.
func (m *Machine) Start(announced bool) {
	m.state = Withdrawn
	if announced {
		m.state = Announced
	}
	m.startup = true
	m.ok, m.bad = 0, 0
}

// Pending reports whether the last observations disagree with the state,
// i.e. a transition is being counted towards. Callers may check sooner
// while a transition is pending.
func (m *Machine) Pending() bool {
	switch m.state {
	case Announced:
		return m.bad > 0
	case Withdrawn:
		return m.ok > 0
	}
	return false
}

// Observe feeds one observation and returns the transition it causes, if
// any. It panics if Start has not been called.
func (m *Machine) Observe(in Input) (Transition, bool) {
	if m.state == Unknown {
		panic("health: Observe before Start")
	}
	startup := m.startup
	m.startup = false
	healthy := in.Result.Healthy()

	if in.Drained {
		m.ok, m.bad = 0, 0
		reason := "drained"
		if in.DrainReason != "" {
			reason = "drained: " + in.DrainReason
		}
		return m.move(Withdrawn, reason)
	}
	if healthy {
		m.ok++
		m.bad = 0
	} else {
		m.bad++
		m.ok = 0
	}

	switch m.state {
	case Announced:
		if healthy {
			return Transition{}, false
		}
		switch {
		case in.Result.Hard():
			return m.move(Withdrawn, in.Result.Reason())
		case startup:
			return m.move(Withdrawn, "unhealthy at start-up: "+in.Result.Reason())
		case m.bad >= m.t.Fall:
			return m.move(Withdrawn, fmt.Sprintf("%d unhealthy in a row: %s", m.bad, in.Result.Reason()))
		}
	case Withdrawn:
		if healthy && m.ok >= m.t.Rise {
			return m.move(Announced, fmt.Sprintf("%d healthy in a row", m.ok))
		}
	}
	return Transition{}, false
}

func (m *Machine) move(to State, reason string) (Transition, bool) {
	if m.state == to {
		return Transition{}, false
	}
	tr := Transition{From: m.state, To: to, Reason: reason}
	m.state = to
	m.ok, m.bad = 0, 0
	return tr, true
}
