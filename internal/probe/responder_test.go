package probe

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

// responder is a real wireguard-go device running in-process, wired to the
// test through channels instead of UDP: no root, no socket, no traffic
// outside the process.
type responder struct {
	dev  *device.Device
	priv PrivateKey
	bind conn.Bind // the test's end of the channel pair
	rx   chan []byte

	mu   sync.Mutex
	logs []string
}

// peerConf is one peer of the responder; no AllowedIPs on purpose.
type peerConf struct {
	pub PublicKey
	psk PresharedKey
}

func newResponder(tb testing.TB, priv PrivateKey, peers ...peerConf) *responder {
	tb.Helper()
	binds := bindtest.NewChannelBinds()
	r := &responder{priv: priv, bind: binds[1], rx: make(chan []byte, 8192)}
	logf := func(format string, args ...any) {
		r.mu.Lock()
		r.logs = append(r.logs, fmt.Sprintf(format, args...))
		r.mu.Unlock()
	}
	r.dev = device.NewDevice(tuntest.NewChannelTUN().TUN(), binds[0], &device.Logger{Verbosef: logf, Errorf: logf})
	var uapi strings.Builder
	fmt.Fprintf(&uapi, "private_key=%s\nreplace_peers=true\n", hex.EncodeToString(priv[:]))
	for _, p := range peers {
		fmt.Fprintf(&uapi, "public_key=%s\npreshared_key=%s\n", hex.EncodeToString(p.pub[:]), hex.EncodeToString(p.psk[:]))
	}
	if err := r.dev.IpcSet(uapi.String()); err != nil {
		r.dev.Close()
		tb.Fatalf("configuring wireguard-go: %v", err)
	}
	if err := r.dev.Up(); err != nil {
		r.dev.Close()
		tb.Fatalf("bringing wireguard-go up: %v", err)
	}
	fns, _, err := r.bind.Open(0)
	if err != nil {
		r.dev.Close()
		tb.Fatalf("opening channel bind: %v", err)
	}
	var wg sync.WaitGroup
	for _, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bufs := [][]byte{make([]byte, 2048)}
			sizes := []int{0}
			eps := []conn.Endpoint{nil}
			for {
				n, err := fn(bufs, sizes, eps)
				if err != nil {
					return
				}
				if n == 1 {
					select {
					case r.rx <- append([]byte(nil), bufs[0][:sizes[0]]...):
					default: // full: drop, like a socket buffer
					}
				}
			}
		}()
	}
	tb.Cleanup(func() {
		r.dev.Close()
		r.bind.Close()
		wg.Wait()
	})
	return r
}

// send delivers a packet to the device as if from 127.0.0.1.
func (r *responder) send(b []byte) error {
	return r.bind.Send([][]byte{b}, bindtest.ChannelEndpoint(2))
}

// recv waits for the next packet from the device.
func (r *responder) recv(timeout time.Duration) ([]byte, bool) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case b := <-r.rx:
		return b, true
	case <-t.C:
		return nil, false
	}
}

// logged reports whether the device logged a line containing s.
func (r *responder) logged(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.logs {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// uapi returns the device's configuration and counters as UAPI lines.
func (r *responder) uapi(tb testing.TB) string {
	tb.Helper()
	s, err := r.dev.IpcGet()
	if err != nil {
		tb.Fatalf("reading wireguard-go state: %v", err)
	}
	return s
}

// dial returns a packetConn to the device, for Prober.dial.
func (r *responder) dial(context.Context, netip.AddrPort) (packetConn, error) {
	return &chanConn{r: r, wake: make(chan struct{}, 1)}, nil
}

// chanConn is a packetConn over the responder's channels.
type chanConn struct {
	r        *responder
	mu       sync.Mutex
	deadline time.Time
	wake     chan struct{}
}

var _ packetConn = (*chanConn)(nil)

func (c *chanConn) Write(b []byte) (int, error) {
	if err := c.r.send(b); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (c *chanConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

func (c *chanConn) Read(b []byte) (int, error) {
	for {
		c.mu.Lock()
		d := c.deadline
		c.mu.Unlock()
		wait := time.Until(d)
		if d.IsZero() {
			wait = time.Hour
		}
		if wait <= 0 {
			return 0, os.ErrDeadlineExceeded
		}
		t := time.NewTimer(wait)
		select {
		case p := <-c.r.rx:
			t.Stop()
			return copy(b, p), nil
		case <-t.C:
		case <-c.wake:
			t.Stop()
		}
	}
}

func (c *chanConn) Close() error { return nil }

// log returns the device's log so far.
func (r *responder) log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.logs, "\n")
}

func isNotOurs(err error) bool { return errors.Is(err, ErrNotOurs) }
