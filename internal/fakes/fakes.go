package fakes

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/bird"
	"github.com/wgbird/wgbird/internal/daemon"
	"github.com/wgbird/wgbird/internal/execcheck"
	"github.com/wgbird/wgbird/internal/health"
	"github.com/wgbird/wgbird/internal/link"
)

var (
	_ daemon.BIRD      = (*BIRD)(nil)
	_ daemon.WireGuard = (*WireGuard)(nil)
	_ daemon.Links     = (*Links)(nil)
)

// BIRD keeps protocol states in memory and records every command.
type BIRD struct {
	mu      sync.Mutex
	protos  []bird.Protocol
	cmds    []string
	err     error
	replies map[string]string // raw replies to Query
}

// NewBIRD returns a BIRD knowing protos, in order.
func NewBIRD(protos ...bird.Protocol) *BIRD {
	return &BIRD{protos: append([]bird.Protocol(nil), protos...)}
}

// Static returns a static protocol in master4, up or down.
func Static(name string, up bool) bird.Protocol {
	st := "down"
	if up {
		st = "up"
	}
	return bird.Protocol{Name: name, Proto: "Static", Table: "master4", State: st, Since: "12:00:00.000"}
}

// SetError makes every later call fail with err (nil: succeed again).
func (b *BIRD) SetError(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.err = err
}

// Commands returns the commands received so far.
func (b *BIRD) Commands() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.cmds...)
}

// Protocols implements daemon.BIRD.
func (b *BIRD) Protocols(context.Context) ([]bird.Protocol, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cmds = append(b.cmds, "show protocols")
	if b.err != nil {
		return nil, b.err
	}
	return append([]bird.Protocol(nil), b.protos...), nil
}

// Enable implements daemon.BIRD.
func (b *BIRD) Enable(_ context.Context, name string) error { return b.set(name, "enable", "up") }

// Disable implements daemon.BIRD.
func (b *BIRD) Disable(_ context.Context, name string) error { return b.set(name, "disable", "down") }

func (b *BIRD) set(name, verb, state string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cmds = append(b.cmds, verb+" "+name)
	if b.err != nil {
		return b.err
	}
	for i := range b.protos {
		if b.protos[i].Name == name {
			b.protos[i].State = state
			return nil
		}
	}
	return &bird.ReplyError{Code: 8003, Text: "No protocols match"}
}

// SetReply makes Query(cmd) answer raw, a reply as BIRD sends it.
func (b *BIRD) SetReply(cmd, raw string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.replies == nil {
		b.replies = map[string]string{}
	}
	b.replies[cmd] = raw
}

// Query answers the reply set for cmd, or BIRD's syntax error.
func (b *BIRD) Query(_ context.Context, cmd string) (bird.Reply, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cmds = append(b.cmds, cmd)
	if b.err != nil {
		return bird.Reply{}, b.err
	}
	raw, ok := b.replies[cmd]
	if !ok {
		raw = "9001 syntax error\n"
	}
	r, err := bird.ParseReply([]byte(raw))
	if err != nil {
		return bird.Reply{}, err
	}
	return r, r.Err()
}

// Status answers BIRD 2.0.12.
func (b *BIRD) Status(context.Context) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cmds = append(b.cmds, "show status")
	if b.err != nil {
		return "", b.err
	}
	return "2.0.12", nil
}

// WireGuard returns one device, or an error.
type WireGuard struct {
	mu  sync.Mutex
	dev *wgtypes.Device
	err error
}

// NewWireGuard returns a WireGuard reader answering dev.
func NewWireGuard(dev *wgtypes.Device) *WireGuard { return &WireGuard{dev: dev} }

// Set changes the answer.
func (w *WireGuard) Set(dev *wgtypes.Device, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dev, w.err = dev, err
}

// Device implements daemon.WireGuard. The device is returned under the
// asked name.
func (w *WireGuard) Device(_ context.Context, name string) (*wgtypes.Device, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return nil, w.err
	}
	if w.dev == nil {
		return nil, nil
	}
	d := *w.dev
	d.Name = name
	d.Peers = append([]wgtypes.Peer(nil), w.dev.Peers...)
	return &d, nil
}

// Device returns a device listening on port with peers peers, the newest
// of which shook hands at handshake (zero: never).
func Device(port, peers int, handshake time.Time) *wgtypes.Device {
	var priv wgtypes.Key
	priv[0] = 0x40 // any non-zero key: the check wants one set
	d := &wgtypes.Device{Type: wgtypes.Userspace, ListenPort: port, PrivateKey: priv, PublicKey: priv.PublicKey()}
	for i := range peers {
		var k wgtypes.Key
		k[0] = byte(i + 1)
		p := wgtypes.Peer{PublicKey: k}
		if i == 0 {
			p.LastHandshakeTime = handshake
		}
		d.Peers = append(d.Peers, p)
	}
	return d
}

// Links answers one link state for every name.
type Links struct {
	mu sync.Mutex
	st link.State
}

// NewLinks returns Links answering st.
func NewLinks(st link.State) *Links { return &Links{st: st} }

// UpLink is an up, running link at index 7 holding vips.
func UpLink(vips ...netip.Prefix) link.State {
	return link.State{Exists: true, Index: 7, Up: true, Running: true, OperState: "unknown", Addrs: vips}
}

// Set changes the answer.
func (l *Links) Set(st link.State) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st = st
}

// Read implements daemon.Links.
func (l *Links) Read(string) (link.State, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.st
	st.Addrs = append([]netip.Prefix(nil), st.Addrs...)
	return st, nil
}

// Exec returns an exec runner that passes every check without running
// anything.
func Exec(ok bool, detail string) func(context.Context, execcheck.Spec) health.Check {
	return func(_ context.Context, s execcheck.Spec) health.Check {
		return health.Check{Name: "exec:" + s.Name, OK: ok, Detail: detail, Took: time.Millisecond}
	}
}
