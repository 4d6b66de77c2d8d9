package probe

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/health"
	"github.com/wgbird/wgbird/internal/wireguard"
)

// DefaultTimeout bounds the wait for an answer when Config.Timeout is zero.
// A healthy wireguard-go answers on loopback within a few milliseconds.
const DefaultTimeout = 250 * time.Millisecond

// Config describes the probe of one WireGuard server.
type Config struct {
	// Interface names the device in messages when no snapshot of it is
	// passed to Probe; with a snapshot, its name is used.
	Interface string
	// PrivateKeyFile holds the probe's private key (mode 0600), as written
	// by GenerateKey or wg genkey.
	PrivateKeyFile string
	// PresharedKeyFile optionally holds the preshared key configured for the
	// probe peer on the server.
	PresharedKeyFile string
	// ServerPublicKey is the base64 public key clients expect. Empty means
	// the device's own public key. When set, a device whose key differs
	// (rotated, or a server restarted with another key) fails the probe.
	ServerPublicKey string
	// Endpoint is the address:port the initiation is sent to. Empty means
	// 127.0.0.1 and the device's listen port.
	Endpoint string
	// Timeout bounds the wait for an answer; zero means DefaultTimeout.
	Timeout time.Duration
}

// packetConn is what a probe needs from its socket; *net.UDPConn has it and
// tests substitute an in-process wireguard-go device.
type packetConn interface {
	Write(b []byte) (int, error)
	Read(b []byte) (int, error)
	SetReadDeadline(t time.Time) error
	Close() error
}

var _ packetConn = (*net.UDPConn)(nil)

// Prober probes one server with one probe key. It remembers the last
// timestamp it sent, so that every initiation carries a later one than the
// previous (the responder drops a replayed or older timestamp) even when the
// clock steps back or two probes fall in the same 16ms whitening step. It is
// safe for concurrent use, but the responder ignores a second initiation from
// the same peer within 20ms (flood protection), so probes should be spaced.
type Prober struct {
	iface    string
	key      PrivateKey
	pub      PublicKey
	psk      PresharedKey
	server   *PublicKey
	endpoint *netip.AddrPort
	timeout  time.Duration
	dial     func(ctx context.Context, addr netip.AddrPort) (packetConn, error)

	mu   sync.Mutex
	last Timestamp
}

// NewProber loads the keys and validates cfg.
func NewProber(cfg Config) (*Prober, error) {
	p := &Prober{iface: cfg.Interface, timeout: cfg.Timeout, dial: dialUDP}
	if p.iface == "" {
		p.iface = "the device"
	}
	if p.timeout <= 0 {
		p.timeout = DefaultTimeout
	}
	if cfg.PrivateKeyFile == "" {
		return nil, errors.New("creating probe: no private key file")
	}
	var err error
	if p.key, err = LoadPrivateKey(cfg.PrivateKeyFile); err != nil {
		return nil, fmt.Errorf("creating probe: %w", err)
	}
	p.pub = p.key.PublicKey()
	if cfg.PresharedKeyFile != "" {
		if p.psk, err = LoadPresharedKey(cfg.PresharedKeyFile); err != nil {
			return nil, fmt.Errorf("creating probe: %w", err)
		}
	}
	if cfg.ServerPublicKey != "" {
		k, err := ParsePublicKey(cfg.ServerPublicKey)
		if err != nil {
			return nil, fmt.Errorf("creating probe: server public key: %w", err)
		}
		p.server = &k
	}
	if cfg.Endpoint != "" {
		ap, err := netip.ParseAddrPort(cfg.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("creating probe: endpoint: %w", err)
		}
		p.endpoint = &ap
	}
	return p, nil
}

// PublicKey is the probe peer's public key, which the server must list.
func (p *Prober) PublicKey() PublicKey { return p.pub }

// Probe runs one probe and returns the check (Name "probe"). dev is the
// latest summary of the device, read with the probe peer's key among the
// peers to ignore (its Ignored then says whether the probe peer is
// configured), or nil when it could not be read; the probe then needs
// ServerPublicKey and Endpoint. With a
// snapshot, the probe first checks that the server key is the expected one
// and that the probe peer is configured, and says so when not. Probe waits
// at most the timeout, or until ctx ends.
func (p *Prober) Probe(ctx context.Context, dev *wireguard.Summary) health.Check {
	c := health.Check{Name: "probe"}
	remote, ep, detail := p.target(dev)
	if detail != "" {
		c.Detail = detail
		return c
	}

	ts := NewTimestamp(time.Now())
	p.mu.Lock()
	if !ts.After(p.last) {
		ts = p.last.next()
	}
	p.last = ts
	p.mu.Unlock()

	eph, err := NewPrivateKey()
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	var idx [4]byte
	if _, err := rand.Read(idx[:]); err != nil {
		c.Detail = fmt.Sprintf("generating sender index: %v", err)
		return c
	}
	msg, hs, err := newInitiation(p.key, p.pub, remote, p.psk, eph, ts, binary.LittleEndian.Uint32(idx[:]))
	if err != nil {
		c.Detail = fmt.Sprintf("building initiation for %s: %v", remote, err)
		return c
	}
	return p.exchange(ctx, c, ep, msg, hs)
}

// target decides whom to probe, or why not.
func (p *Prober) target(dev *wireguard.Summary) (PublicKey, netip.AddrPort, string) {
	if dev == nil {
		switch {
		case p.server == nil:
			return PublicKey{}, netip.AddrPort{}, fmt.Sprintf("cannot probe: %s was not read and no server public key is configured", p.iface)
		case p.endpoint == nil:
			return PublicKey{}, netip.AddrPort{}, fmt.Sprintf("cannot probe: %s was not read and no endpoint is configured", p.iface)
		}
		return *p.server, *p.endpoint, ""
	}
	remote := PublicKey(dev.PublicKey)
	if !dev.PrivateKey || remote == (PublicKey{}) {
		return remote, netip.AddrPort{}, fmt.Sprintf("%s has no private key", dev.Name)
	}
	if p.server != nil && *p.server != remote {
		return remote, netip.AddrPort{}, fmt.Sprintf("server public key is %s, want %s (key rotated?)", remote, p.server)
	}
	if !slices.Contains(dev.Ignored, wgtypes.Key(p.pub)) {
		return remote, netip.AddrPort{}, fmt.Sprintf("probe peer %s is not configured on %s", p.pub, dev.Name)
	}
	if p.endpoint != nil {
		return remote, *p.endpoint, ""
	}
	if dev.ListenPort <= 0 || dev.ListenPort > 65535 {
		return remote, netip.AddrPort{}, fmt.Sprintf("%s has no listen port", dev.Name)
	}
	return remote, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(dev.ListenPort)), ""
}

// exchange sends the initiation and waits for its answer.
func (p *Prober) exchange(ctx context.Context, c health.Check, ep netip.AddrPort, msg []byte, hs *Handshake) health.Check {
	start := time.Now()
	deadline := start.Add(p.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn, err := p.dial(ctx, ep)
	if err != nil {
		c.Detail = fmt.Sprintf("opening socket to %s: %v", ep, err)
		return c
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(deadline); err != nil {
		c.Detail = fmt.Sprintf("setting deadline: %v", err)
		return c
	}
	// Cancelling ctx wakes the read at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	if _, err := conn.Write(msg); err != nil {
		return sockFailure(c, ep, "sending initiation to", err)
	}
	cookie := false
	buf := make([]byte, 512)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				switch {
				case ctx.Err() != nil:
					c.Detail = fmt.Sprintf("probe canceled: %v", context.Cause(ctx))
				case cookie:
					c.OK = true
					c.Detail = fmt.Sprintf("alive, unverified: %s, under load, answered with a cookie reply but not the retry with mac2 within %v", ep, deadline.Sub(start).Round(time.Millisecond))
				default:
					c.Detail = fmt.Sprintf("no handshake response within %v", deadline.Sub(start).Round(time.Millisecond))
				}
				return c
			}
			return sockFailure(c, ep, "waiting for the answer from", err)
		}
		b := buf[:n]
		switch {
		case n == ResponseSize && b[0] == typeResponse:
			err := hs.ConsumeResponse(b)
			if errors.Is(err, ErrNotOurs) {
				continue
			}
			if err != nil {
				c.Detail = fmt.Sprintf("handshake response from %s does not verify: %v", ep, err)
				return c
			}
			c.OK = true
			c.Detail = fmt.Sprintf("handshake answered by %s in %v", ep, time.Since(start).Round(time.Microsecond))
			if cookie {
				c.Detail += ", after a cookie reply (server under load)"
			}
			return c
		case n == CookieReplySize && b[0] == typeCookieReply && !cookie:
			retry, err := hs.ConsumeCookieReply(b)
			if errors.Is(err, ErrNotOurs) {
				continue
			}
			if err != nil {
				c.Detail = fmt.Sprintf("cookie reply from %s does not verify: %v", ep, err)
				return c
			}
			cookie = true
			if _, err := conn.Write(retry); err != nil {
				return sockFailure(c, ep, "sending initiation with mac2 to", err)
			}
		}
	}
}

// sockFailure describes a socket error; a refused port means nothing
// listens there any more, which is a part gone (Hard).
func sockFailure(c health.Check, ep netip.AddrPort, action string, err error) health.Check {
	if errors.Is(err, syscall.ECONNREFUSED) {
		c.Hard = true
		c.Detail = fmt.Sprintf("nothing listens on %s (connection refused)", ep)
		return c
	}
	c.Detail = fmt.Sprintf("%s %s: %v", action, ep, err)
	return c
}

func dialUDP(ctx context.Context, addr netip.AddrPort) (packetConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", addr.String())
	if err != nil {
		return nil, err
	}
	return c.(*net.UDPConn), nil
}

// Probe runs a single probe with a fresh Prober; a daemon keeps a Prober per
// service instead, so the keys are read once and timestamps stay monotonic.
func Probe(ctx context.Context, cfg Config, dev *wireguard.Summary) health.Check {
	p, err := NewProber(cfg)
	if err != nil {
		return health.Check{Name: "probe", Detail: err.Error()}
	}
	return p.Probe(ctx, dev)
}
