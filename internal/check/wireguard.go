package check

import (
	"context"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/health"
	"github.com/wgbird/wgbird/internal/wireguard"
)

// wireGuardCheck reads the device, bounded by the service's timeout, and
// judges it; the checks after it find the device in the pass. Without a
// configured listen_port, the port of its first healthy read is expected
// from then on: clients are configured with the port the server listened
// on, and a change strands them.
type wireGuardCheck struct {
	wg      WireGuard
	spec    wireguard.Spec
	timeout time.Duration
}

func newWireGuardCheck(s config.Service, wg WireGuard, notClients []wgtypes.Key) *wireGuardCheck {
	return &wireGuardCheck{wg: wg, timeout: s.Timeout, spec: wireguard.Spec{
		Interface: s.Interface, ListenPort: s.ListenPort, MinPeers: s.MinPeers,
		MaxHandshakeAge: s.MaxHandshakeAge, IgnorePeers: notClients,
	}}
}

func (c *wireGuardCheck) Run(ctx context.Context, p *Pass) health.Check {
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, c.timeout)
	dev, err := c.wg.Summary(wctx, c.spec.Interface, c.spec.IgnorePeers...)
	cancel()
	var read *wireguard.Summary
	if err == nil {
		read = &dev
		p.Device = read
	}
	wc := wireguard.Evaluate(c.spec, read, err, time.Now())
	wc.Took = time.Since(start)
	if wc.OK && c.spec.ListenPort == 0 {
		c.spec.ListenPort, c.spec.PortSeen = read.ListenPort, true
	}
	return wc
}
