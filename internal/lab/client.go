package lab

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/wgbird/wgbird/internal/labjudge"
)

// The client as the judge: what the people behind the tunnel see.
// StartPinger pings through a client's tunnel at a fixed rate
// (labjudge.Pinger); ClientEndpoint reads the client's own endpoint for the
// server peer, which must stay the service address (Lab.Endpoint) through
// every failover.

// StartPinger starts pinging TunnelServer through the tunnel of the client
// called name every interval (labjudge.PingInterval if 0). Stop it when
// done.
func (l *Lab) StartPinger(name string, interval time.Duration) (*labjudge.Pinger, error) {
	if !l.isClient(name) {
		return nil, fmt.Errorf("unknown client %q", name)
	}
	return labjudge.StartPinger(l.NS(name), name, TunnelServer.Addr(), interval)
}

// PingFrom pings TunnelServer once through the tunnel of the client
// called name and returns the round trip.
func (l *Lab) PingFrom(name string, timeout time.Duration) (time.Duration, error) {
	if !l.isClient(name) {
		return 0, fmt.Errorf("unknown client %q", name)
	}
	return labjudge.Ping(l.NS(name), TunnelServer.Addr(), timeout)
}

// ClientEndpoint returns the client's own endpoint for the server peer, as
// its WireGuard reports it (`wg show wg0 endpoints` in the client's
// namespace): the address it sends to and follows when a server's packet
// comes from elsewhere. It must stay Endpoint.
func (l *Lab) ClientEndpoint(ctx context.Context, name string) (netip.AddrPort, error) {
	if !l.isClient(name) {
		return netip.AddrPort{}, fmt.Errorf("unknown client %q", name)
	}
	server, err := l.publicKey(Servers[0].Name)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	out, err := l.wg(ctx, name, "show", WGInterface, "endpoints")
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("reading %s's endpoint: %w", name, err)
	}
	eps, err := labjudge.ParseEndpoints(out)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("reading %s's endpoint: %w", name, err)
	}
	ep, ok := eps[server]
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("%s has no server peer", name)
	}
	return ep, nil
}

// CheckEndpoint returns an error unless the client called name still
// sends to the service address (Endpoint): a client whose endpoint became
// a server's own address (or another NAT mapping of it) is pinned off the
// VIP and will not follow the next failover.
func (l *Lab) CheckEndpoint(ctx context.Context, name string) error {
	ep, err := l.ClientEndpoint(ctx, name)
	if err != nil {
		return err
	}
	if ep != l.Endpoint() {
		return fmt.Errorf("%s's endpoint is %s, not %s: pinned off the VIP", name, ep, l.Endpoint())
	}
	return nil
}

// SetClientEndpoint sets the endpoint of the client called name for the
// server peer, as a handshake from elsewhere would.
func (l *Lab) SetClientEndpoint(ctx context.Context, name string, ep netip.AddrPort) error {
	server, err := l.publicKey(Servers[0].Name)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = l.wg(ctx, name, "set", WGInterface, "peer", server, "endpoint", ep.String())
	return err
}

// ResetClient starts the client called name afresh on every side: each
// server forgets its peer (removed and configured again, so no session,
// endpoint or cached source is left), the router forgets its mappings,
// and the client reconnects to Endpoint. A measurement that starts from
// here does not inherit what an earlier failover left behind.
func (l *Lab) ResetClient(ctx context.Context, name string) error {
	pub, err := l.publicKey(name)
	if err != nil {
		return err
	}
	for _, s := range l.Servers() {
		if _, err := l.wg(ctx, s.Name, "set", WGInterface, "peer", pub, "remove"); err != nil {
			return fmt.Errorf("resetting %s on %s: %w", name, s.Name, err)
		}
		if err := l.ensureWireGuard(ctx, s.Name); err != nil {
			return fmt.Errorf("resetting %s on %s: %w", name, s.Name, err)
		}
	}
	if !l.cfg.Routed {
		if err := l.ForgetMappings(name); err != nil {
			return err
		}
	}
	return l.Reconnect(ctx, name)
}
