package takeover

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Client is the part of *wgctrl.Client a takeover uses.
type Client interface {
	Device(name string) (*wgtypes.Device, error)
	ConfigureDevice(name string, cfg wgtypes.Config) error
}

var _ Client = (*wgctrl.Client)(nil)

// RejectAfterTime is how long a WireGuard session can carry data
// (wireguard-go device/constants.go, the kernel's REJECT_AFTER_TIME). A
// peer whose last handshake is younger may hold a session, on whose keys a
// keepalive would go out instead of a handshake; slack covers a handshake
// time read a little late.
const (
	RejectAfterTime = 180 * time.Second
	slack           = 10 * time.Second
)

// Method is how a takeover made the device start its handshake.
type Method string

const (
	// Keepalive: the endpoint set and the persistent keepalive turned on
	// (0 → non-zero sends a keepalive at once, which starts a handshake
	// when the peer has no session), then back to its configured value.
	Keepalive Method = "keepalive"
	// Readd: the peer held a session (possibly an old one the client no
	// longer has), so it was removed and added again with its allowed
	// IPs, preshared key and keepalive, and then kicked as above.
	Readd Method = "readd"
)

// ErrNoPeer is returned when the device has no such peer.
var ErrNoPeer = errors.New("no such peer on the device")

// ErrInFlight is returned while an earlier call on the same device has
// not returned (a hung wireguard-go answers no UAPI call).
var ErrInFlight = errors.New("an earlier WireGuard call on the device is still in flight")

// Result says what a takeover did.
type Result struct {
	Method Method
	// Took is how long the wgctrl calls took.
	Took time.Duration
}

// Taker starts handshakes on behalf of clients. Every call is bounded by
// its context; at most one call per device is in flight, so a hung
// wireguard-go costs one goroutine, not one per takeover.
type Taker struct {
	c Client

	mu       sync.Mutex
	inflight map[string]bool
}

// New returns a Taker using c.
func New(c Client) *Taker { return &Taker{c: c, inflight: map[string]bool{}} }

// Start makes device iface start a handshake with peer at endpoint, and
// leaves the peer configured as before: same preshared key, allowed IPs
// and persistent keepalive (the endpoint is the client's current one, as
// roaming would have set it). now is the time the device's handshake
// times are compared with.
func (t *Taker) Start(ctx context.Context, iface string, peer wgtypes.Key, endpoint netip.AddrPort, now time.Time) (Result, error) {
	var r Result
	err := t.bounded(ctx, iface, func() (err error) { r, err = start(t.c, iface, peer, endpoint, now); return err })
	if errors.Is(err, errTimedOut) {
		return Result{}, fmt.Errorf("taking over peer %s on %s: no answer from WireGuard: %w", short(peer), iface, ctx.Err())
	}
	return r, err
}

// Device reads the device, bounded by ctx, with the same one-in-flight
// rule as Start.
func (t *Taker) Device(ctx context.Context, iface string) (*wgtypes.Device, error) {
	var d *wgtypes.Device
	err := t.bounded(ctx, iface, func() (err error) { d, err = t.c.Device(iface); return err })
	if errors.Is(err, errTimedOut) {
		return nil, fmt.Errorf("reading %s: no answer from WireGuard: %w", iface, ctx.Err())
	}
	return d, err
}

var errTimedOut = errors.New("timed out")

// bounded runs f in a goroutine of its own and waits until it returns or
// ctx ends (errTimedOut); while it runs, no other call on iface starts
// (ErrInFlight).
func (t *Taker) bounded(ctx context.Context, iface string, f func() error) error {
	t.mu.Lock()
	if t.inflight[iface] {
		t.mu.Unlock()
		return ErrInFlight
	}
	t.inflight[iface] = true
	t.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		err := f()
		t.mu.Lock()
		delete(t.inflight, iface)
		t.mu.Unlock()
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return errTimedOut
	}
}

func start(c Client, iface string, key wgtypes.Key, endpoint netip.AddrPort, now time.Time) (Result, error) {
	began := time.Now()
	dev, err := c.Device(iface)
	if err != nil {
		return Result{}, fmt.Errorf("reading %s: %w", iface, err)
	}
	i := slices.IndexFunc(dev.Peers, func(p wgtypes.Peer) bool { return p.PublicKey == key })
	if i < 0 {
		return Result{}, fmt.Errorf("taking over peer %s on %s: %w", short(key), iface, ErrNoPeer)
	}
	p := dev.Peers[i]
	plan := PlanFor(p, endpoint, now)
	for _, cfg := range plan.Steps {
		if err := c.ConfigureDevice(iface, wgtypes.Config{Peers: []wgtypes.PeerConfig{cfg}}); err != nil {
			err = fmt.Errorf("taking over peer %s on %s (%s): %w", short(key), iface, plan.Method, err)
			if plan.Method == Readd {
				// Whatever happened, the peer must exist as configured.
				if rerr := c.ConfigureDevice(iface, wgtypes.Config{Peers: []wgtypes.PeerConfig{Restore(p)}}); rerr != nil {
					err = errors.Join(err, fmt.Errorf("restoring peer %s: %w", short(key), rerr))
				}
			}
			return Result{Method: plan.Method, Took: time.Since(began)}, err
		}
	}
	return Result{Method: plan.Method, Took: time.Since(began)}, nil
}

// Plan is the wgctrl calls of one takeover, in order.
type Plan struct {
	Method Method
	Steps  []wgtypes.PeerConfig
}

// PlanFor returns the calls that make the device start a handshake with p
// at endpoint and end with p's configuration as it is: a peer that may
// hold a session (a handshake within RejectAfterTime) is removed and
// added again first; then the keepalive goes 0 → non-zero (at once, in
// the call that creates a re-added peer) and back to its value.
func PlanFor(p wgtypes.Peer, endpoint netip.AddrPort, now time.Time) Plan {
	ep := net.UDPAddrFromAddrPort(endpoint)
	ka := p.PersistentKeepaliveInterval
	kick := ka
	if kick <= 0 {
		kick = time.Second
	}
	zero := time.Duration(0)
	var pl Plan
	if !p.LastHandshakeTime.IsZero() && now.Sub(p.LastHandshakeTime) < RejectAfterTime+slack {
		pl.Method = Readd
		add := Restore(p)
		add.Endpoint = ep
		add.PersistentKeepaliveInterval = &kick
		pl.Steps = append(pl.Steps, wgtypes.PeerConfig{PublicKey: p.PublicKey, Remove: true}, add)
	} else {
		pl.Method = Keepalive
		if ka > 0 {
			pl.Steps = append(pl.Steps, wgtypes.PeerConfig{PublicKey: p.PublicKey, UpdateOnly: true, Endpoint: ep, PersistentKeepaliveInterval: &zero})
		}
		pl.Steps = append(pl.Steps, wgtypes.PeerConfig{PublicKey: p.PublicKey, UpdateOnly: true, Endpoint: ep, PersistentKeepaliveInterval: &kick})
	}
	if ka <= 0 {
		pl.Steps = append(pl.Steps, wgtypes.PeerConfig{PublicKey: p.PublicKey, UpdateOnly: true, PersistentKeepaliveInterval: &zero})
	}
	return pl
}

// Restore is the configuration that creates p as it was read: preshared
// key, allowed IPs, keepalive and endpoint.
func Restore(p wgtypes.Peer) wgtypes.PeerConfig {
	psk := p.PresharedKey
	ka := p.PersistentKeepaliveInterval
	cfg := wgtypes.PeerConfig{
		PublicKey:                   p.PublicKey,
		PresharedKey:                &psk,
		PersistentKeepaliveInterval: &ka,
		ReplaceAllowedIPs:           true,
		AllowedIPs:                  slices.Clone(p.AllowedIPs),
	}
	if p.Endpoint != nil {
		e := *p.Endpoint
		cfg.Endpoint = &e
	}
	return cfg
}

func short(k wgtypes.Key) string { return k.String()[:8] + "…" }
