package health

import (
	"fmt"
	"strings"
	"time"
)

// Check is the outcome of one health check of a service.
type Check struct {
	// Name identifies the check: "wireguard", "link", "exec:NAME".
	Name string
	// OK reports whether the check passed.
	OK bool
	// Hard marks a failure that means a part is gone (device, link or VIP):
	// the service is withdrawn at once, without waiting for Fall.
	Hard bool
	// Detail explains the result to a person, e.g. "VIP 192.168.20.1/24
	// missing on wg0".
	Detail string
	// Took is how long the check ran.
	Took time.Duration
	// Reused marks a result this evaluation took over from an earlier run
	// (a background check's latest, the probe's within its spacing): it
	// ran once, and Took is that run's.
	Reused bool
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

// Evaluation is one evaluation of a service as the daemon's observers
// (metrics, hooks) see it.
type Evaluation struct {
	Service string
	Result  Result
	State   State
	Drained bool
	// Device is what this evaluation read of the WireGuard device; nil
	// when it was not read or the read failed.
	Device *DeviceStats
	At     time.Time
}

// DeviceStats are the figures of a WireGuard device read that metrics
// show.
type DeviceStats struct {
	// Peers counts every peer, the probe's too.
	Peers int
	// NewestHandshake is the newest handshake of any peer; zero if none.
	NewestHandshake time.Time
	// NewestClientHandshake leaves the probe's peer out (its handshake
	// moves at every probe).
	NewestClientHandshake time.Time
	// ListenPort is the device's listen port.
	ListenPort int
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

// Cause is why a transition happened, as a closed set: metrics count
// transitions by it, and the prose of Reason is derived from it.
type Cause int

const (
	// CauseOther is a transition the caller makes itself (BIRD's state at
	// start-up, a shutdown); Detail says what it was.
	CauseOther Cause = iota
	// CauseRecovered: Rise healthy observations in a row.
	CauseRecovered
	// CauseUnhealthy: Fall unhealthy observations in a row.
	CauseUnhealthy
	// CauseHardFailure: a part is gone (device, link or VIP): withdrawn at
	// once.
	CauseHardFailure
	// CauseUnhealthyAtStartup: announced by BIRD at start, unhealthy at
	// the first observation.
	CauseUnhealthyAtStartup
	// CauseDrained: an operator's drain.
	CauseDrained
)

func (c Cause) String() string {
	switch c {
	case CauseOther:
		return "other"
	case CauseRecovered:
		return "recovered"
	case CauseUnhealthy:
		return "unhealthy"
	case CauseHardFailure:
		return "hard_failure"
	case CauseUnhealthyAtStartup:
		return "unhealthy_at_startup"
	case CauseDrained:
		return "drained"
	}
	return fmt.Sprintf("Cause(%d)", int(c))
}

// Transition is a change of state and its cause.
type Transition struct {
	From, To State
	Cause    Cause
	// Count is the observations in a row that decided (CauseRecovered,
	// CauseUnhealthy).
	Count int
	// Detail is the failed checks (Result.Reason) for the unhealthy
	// causes, the operator's reason for CauseDrained ("" for none), and
	// the whole reason for CauseOther.
	Detail string
}

// Reason is the transition's reason for a person: logs, status, hooks.
func (t Transition) Reason() string {
	switch t.Cause {
	case CauseRecovered:
		return fmt.Sprintf("%d healthy in a row", t.Count)
	case CauseUnhealthy:
		return fmt.Sprintf("%d unhealthy in a row: %s", t.Count, t.Detail)
	case CauseUnhealthyAtStartup:
		return "unhealthy at start-up: " + t.Detail
	case CauseDrained:
		if t.Detail == "" {
			return "drained"
		}
		return "drained: " + t.Detail
	}
	return t.Detail
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
		return m.move(Transition{To: Withdrawn, Cause: CauseDrained, Detail: in.DrainReason})
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
			return m.move(Transition{To: Withdrawn, Cause: CauseHardFailure, Detail: in.Result.Reason()})
		case startup:
			return m.move(Transition{To: Withdrawn, Cause: CauseUnhealthyAtStartup, Detail: in.Result.Reason()})
		case m.bad >= m.t.Fall:
			return m.move(Transition{To: Withdrawn, Cause: CauseUnhealthy, Count: m.bad, Detail: in.Result.Reason()})
		}
	case Withdrawn:
		if healthy && m.ok >= m.t.Rise {
			return m.move(Transition{To: Announced, Cause: CauseRecovered, Count: m.ok})
		}
	}
	return Transition{}, false
}

// move makes tr (To, Cause and its details set) from the current state.
func (m *Machine) move(tr Transition) (Transition, bool) {
	if m.state == tr.To {
		return Transition{}, false
	}
	tr.From = m.state
	m.state = tr.To
	m.ok, m.bad = 0, 0
	return tr, true
}
