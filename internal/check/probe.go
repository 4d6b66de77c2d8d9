package check

import (
	"context"
	"time"

	"github.com/wgbird/wgbird/internal/health"
)

// probeSpacing is the least time between two probes: the responder ignores
// a second initiation from the same peer within 20 ms (flood protection),
// which would fail the probe of a healthy server.
const probeSpacing = 20 * time.Millisecond

// probeCheck runs the active handshake probe against the device the
// WireGuard check read. An evaluation an event started, or one within
// probeSpacing of the last probe, reuses the last result.
type probeCheck struct {
	prober Prober
	last   health.Check
	at     time.Time // of the last probe
}

func (c *probeCheck) Run(ctx context.Context, p *Pass) health.Check {
	if (p.Scheduled || c.at.IsZero()) && time.Since(c.at) >= probeSpacing {
		c.at = time.Now()
		c.last = c.prober.Probe(ctx, p.Device)
		c.last.Took = time.Since(c.at)
		return c.last
	}
	r := c.last
	r.Reused = true
	return r
}
