package check

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/execcheck"
	"github.com/wgbird/wgbird/internal/health"
	"github.com/wgbird/wgbird/internal/link"
	"github.com/wgbird/wgbird/internal/wireguard"
)

// Check is one health check of a service.
type Check interface {
	// Run checks once, within the check's own deadline, and reports the
	// result. p carries what the pass knows so far.
	Run(ctx context.Context, p *Pass) health.Check
}

// Pass is one evaluation of a service: the checks run in order, and each
// may leave what it read for the ones after it.
type Pass struct {
	// Scheduled is false for an evaluation a netlink event started.
	Scheduled bool
	// LinkIndex is the interface's index, once the link check has read
	// it (0 when the link is missing): events name links by index.
	LinkIndex int
	// Device is the WireGuard device as the WireGuard check read it; nil
	// before that check, or when the read failed.
	Device *wireguard.Summary
}

// Policy is when the daemon runs a check.
type Policy int

const (
	// EveryPass runs the check inline in every scheduled evaluation.
	EveryPass Policy = iota
	// OnEvents runs it in every evaluation, and alone on a netlink event
	// (which can only ever withdraw).
	OnEvents
	// Background runs it in a goroutine of its own every Period;
	// evaluations use its latest result, and the first evaluation waits
	// for its first one.
	Background
)

// Spec is a check and when it runs.
type Spec struct {
	Check  Check
	Policy Policy
	// Period of a Background check.
	Period time.Duration
	// Gate: a hard failure of this check ends the pass, as nothing after
	// it can pass (the link or a VIP is gone: no WireGuard read, which may
	// cost a whole deadline).
	Gate bool
}

// Links reads an interface's state.
type Links interface {
	Read(name string) (link.State, error)
}

// WireGuard reads a device. Implementations bound every read by ctx.
type WireGuard interface {
	// Summary reads what the WireGuard check judges, leaving ignore out
	// of the peer counts.
	Summary(ctx context.Context, name string, ignore ...wgtypes.Key) (wireguard.Summary, error)
	// Alive reports whether the device answers at all (the liveness
	// check between passes).
	Alive(ctx context.Context, name string) error
}

// Prober runs the active WireGuard handshake probe of one service.
type Prober interface {
	// Probe runs one probe against dev, the device as just read, or nil
	// when the read failed. It returns within its own deadline.
	Probe(ctx context.Context, dev *wireguard.Summary) health.Check
	// PublicKey is the probe peer's key: the server lists it as a peer,
	// and min_peers must not count it.
	PublicKey() wgtypes.Key
}

// Deps are what the checks read.
type Deps struct {
	Links     Links
	WireGuard WireGuard
	// Exec runs one exec check.
	Exec func(ctx context.Context, s execcheck.Spec) health.Check
	// NewProber creates the prober of a service that has a probe.
	NewProber func(config.Service) (Prober, error)
}

// Set is a service's checks, in the order they run.
type Set struct {
	Specs []Spec
	// NotClients are peers the checks add to the device themselves (the
	// probe's): no client, so min_peers and drain --wait ignore them.
	NotClients []wgtypes.Key
	// Liveness, when set, is the cheap check the daemon runs between
	// scheduled passes while the service is announced: an error means
	// something the checks decide may have failed, and the daemon runs a
	// scheduled pass at once. It bounds itself by the service's timeout.
	Liveness func(ctx context.Context) error
}

// ProbeError is returned when a service's prober cannot be created (its
// key file is missing, unreadable or readable by others): a configuration
// error.
type ProbeError struct {
	Service string
	Err     error
}

func (e *ProbeError) Error() string { return fmt.Sprintf("service %q: %v", e.Service, e.Err) }
func (e *ProbeError) Unwrap() error { return e.Err }

// Build makes the checks of service s: the link and its VIPs (also on
// events), the WireGuard device, the probe if configured, and every exec
// check in the background. A probe that cannot be created is a
// *ProbeError.
func Build(s config.Service, d Deps) (*Set, error) {
	set := &Set{}
	var probe *probeCheck
	if s.Probe != nil {
		var pr Prober
		var err error
		if d.NewProber == nil {
			err = errors.New("creating probe: no prober available")
		} else if pr, err = d.NewProber(s); err == nil && pr == nil {
			err = errors.New("creating probe: no prober returned")
		}
		if err != nil {
			return nil, &ProbeError{Service: s.Name, Err: err}
		}
		probe = &probeCheck{prober: pr}
		set.NotClients = append(set.NotClients, pr.PublicKey())
	}
	set.Specs = append(set.Specs,
		Spec{Check: &linkCheck{links: d.Links, iface: s.Interface, vips: s.VIPs}, Policy: OnEvents, Gate: true},
		Spec{Check: newWireGuardCheck(s, d.WireGuard, set.NotClients), Policy: EveryPass})
	set.Liveness = func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, s.Timeout)
		defer cancel()
		return d.WireGuard.Alive(ctx, s.Interface)
	}
	if probe != nil {
		set.Specs = append(set.Specs, Spec{Check: probe, Policy: EveryPass})
	}
	for _, e := range s.Exec {
		set.Specs = append(set.Specs, Spec{
			Check:  execCheck{run: d.Exec, spec: execcheck.Spec{Name: e.Name, Command: e.Command, Timeout: e.Timeout}},
			Policy: Background, Period: s.Interval,
		})
	}
	return set, nil
}
