package check

import (
	"context"
	"net/netip"
	"time"

	"github.com/wgbird/wgbird/internal/health"
	"github.com/wgbird/wgbird/internal/link"
)

// linkCheck reads the interface through netlink and judges it and its
// VIPs.
type linkCheck struct {
	links Links
	iface string
	vips  []netip.Prefix
}

func (c *linkCheck) Run(_ context.Context, p *Pass) health.Check {
	start := time.Now()
	ls, err := c.links.Read(c.iface)
	if err == nil && ls.Exists {
		p.LinkIndex = ls.Index
	}
	lc := link.Evaluate(c.iface, c.vips, ls, err)
	lc.Took = time.Since(start)
	return lc
}
