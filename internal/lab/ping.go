package lab

import (
	"context"
	"fmt"
	"time"

	"github.com/wgbird/wgbird/internal/labjudge"
)

// PingTunnel pings the servers' inner tunnel address from the client, so
// the echo travels through the client's WireGuard tunnel to whichever
// server the router picks.
func (l *Lab) PingTunnel(timeout time.Duration) (time.Duration, error) {
	return labjudge.Ping(l.NS("client"), TunnelServer.Addr(), timeout)
}

// PingTunnelUntil pings through the tunnel every step until a reply
// comes, and returns when the successful echo was sent.
func (l *Lab) PingTunnelUntil(ctx context.Context, step time.Duration) (time.Time, error) {
	for {
		sent := time.Now()
		if _, err := l.PingTunnel(step); err == nil {
			return sent, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("no reply through the tunnel: %w", ctx.Err())
		case <-time.After(time.Until(sent.Add(step))):
		}
	}
}
