package daemon

import (
	"context"
	"log/slog"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/api"
	"github.com/wgbird/wgbird/internal/bird"
	"github.com/wgbird/wgbird/internal/check"
	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/execcheck"
	"github.com/wgbird/wgbird/internal/health"
	"github.com/wgbird/wgbird/internal/link"
	"github.com/wgbird/wgbird/internal/wireguard"
)

// BIRD is what the daemon needs of BIRD's control socket.
type BIRD interface {
	Protocols(ctx context.Context) ([]bird.Protocol, error)
	Enable(ctx context.Context, name string) error
	Disable(ctx context.Context, name string) error
	// Status returns BIRD's version ("show status").
	Status(ctx context.Context) (string, error)
}

// Links reads an interface's state; Prober runs a service's active
// probe. The checks use them (internal/check).
type (
	Links  = check.Links
	Prober = check.Prober
)

// WireGuard reads devices: what the checks read, and the full device for
// the control socket's peer listing.
type WireGuard interface {
	check.WireGuard
	Device(ctx context.Context, name string) (*wgtypes.Device, error)
}

var (
	_ BIRD      = (*bird.Client)(nil)
	_ WireGuard = (*wireguard.Reader)(nil)
	_ Links     = (*link.Reader)(nil)
)

// Deps are the daemon's seams to the outside world. Zero fields get the
// real implementations from New's caller; tests pass fakes.
type Deps struct {
	BIRD BIRD
	// BIRDStatus is asked `show status` to notice a BIRD reload: after
	// each of BIRDReloads' signs and every interval, or every
	// fast_interval without them; nil uses BIRD when it can (a
	// *bird.Client), or no watcher.
	BIRDStatus BIRDStatusReader
	// BIRDReloads, if set, starts watching for the signs of a BIRD
	// restart or reload (bird.WatchReloads); nil, or an error, means
	// asking `show status` every fast_interval instead.
	BIRDReloads func(ctx context.Context) (ReloadSigns, error)
	WireGuard   WireGuard
	Links       Links
	// Exec runs one exec check.
	Exec func(ctx context.Context, s execcheck.Spec) health.Check
	// NewProber creates the prober of a service that has a probe (once,
	// in New). An error makes New fail with a *ProbeError.
	NewProber func(config.Service) (Prober, error)
	// Subscribe delivers link and address events until ctx ends. Nil
	// means polling only.
	Subscribe func(ctx context.Context, log *slog.Logger, events chan<- link.Event)
	Log       *slog.Logger
	// Observer, if set, is told every evaluation and transition (metrics,
	// hooks).
	Observer Observer
	// Continuity, if set, reports each service's client continuity for
	// its status (VIP-sourcing, the group, takeovers).
	Continuity ContinuityStatus
}

// ContinuityStatus reports a service's client continuity; nil for none.
type ContinuityStatus interface {
	Status(service string) *api.Continuity
}

// Observer is told what the daemon sees. Calls come from the service
// loops and must return quickly: anything slow belongs in its own
// goroutine.
type Observer interface {
	Evaluated(e health.Evaluation)
	Transitioned(service string, tr health.Transition)
}
