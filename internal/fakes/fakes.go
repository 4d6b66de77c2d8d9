package fakes

import (
	"context"
	"fmt"
	"io/fs"
	"net/netip"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/bird"
	"github.com/wgbird/wgbird/internal/check"
	"github.com/wgbird/wgbird/internal/execcheck"
	"github.com/wgbird/wgbird/internal/health"
	"github.com/wgbird/wgbird/internal/link"
	"github.com/wgbird/wgbird/internal/wireguard"
)

var (
	_ check.WireGuard = (*WireGuard)(nil)
	_ check.Links     = (*Links)(nil)
	_ check.Prober    = (*Prober)(nil)
)

// BIRD keeps protocol states in memory and records every command.
type BIRD struct {
	mu       sync.Mutex
	protos   []bird.Protocol
	cmds     []string
	counts   map[string]int
	err      error
	refuse   error
	block    <-chan struct{}
	disabled chan string
	replies  map[string]string // raw replies to Query
}

// NewBIRD returns a BIRD knowing protos, in order.
func NewBIRD(protos ...bird.Protocol) *BIRD {
	return &BIRD{protos: append([]bird.Protocol(nil), protos...), counts: map[string]int{}, disabled: make(chan string, 100)}
}

// record notes a command; the caller holds mu.
func (b *BIRD) record(cmd string) {
	b.cmds = append(b.cmds, cmd)
	b.counts[cmd]++
}

// Take returns the commands received since the last Take and forgets
// them.
func (b *BIRD) Take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.cmds
	b.cmds = nil
	return c
}

// Count returns how often cmd was received in all.
func (b *BIRD) Count(cmd string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.counts[cmd]
}

// Refuse makes enable and disable fail with err while reads still answer,
// as a socket restricted to reads does (nil: accept again).
func (b *BIRD) Refuse(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refuse = err
}

// Block holds every show protocols until ch is closed (nil: answer at
// once).
func (b *BIRD) Block(ch <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.block = ch
}

// Disabled delivers the name of every protocol disabled, in order.
func (b *BIRD) Disabled() <-chan string { return b.disabled }

// Enabled reports whether BIRD shows the protocol enabled.
func (b *BIRD) Enabled(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.protos {
		if p.Name == name {
			return p.Enabled()
		}
	}
	return false
}

// SetState sets a protocol up or down without a command, as BIRD's own
// restart or configure does; a protocol BIRD did not know is added as a
// static one.
func (b *BIRD) SetState(name string, up bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.protos {
		if b.protos[i].Name == name {
			b.protos[i].State = Static(name, up).State
			return
		}
	}
	b.protos = append(b.protos, Static(name, up))
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

// Protocols implements daemon.BIRD (while Block holds it, it waits).
func (b *BIRD) Protocols(context.Context) ([]bird.Protocol, error) {
	b.mu.Lock()
	block := b.block
	b.mu.Unlock()
	if block != nil {
		<-block
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.record("show protocols")
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
	b.record(verb + " " + name)
	if b.err != nil {
		return b.err
	}
	if b.refuse != nil {
		return b.refuse
	}
	for i := range b.protos {
		if b.protos[i].Name == name {
			b.protos[i].State = state
			if state == "down" {
				select {
				case b.disabled <- name:
				default:
				}
			}
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
	b.record(cmd)
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
	b.record("show status")
	if b.err != nil {
		return "", b.err
	}
	return "2.0.12", nil
}

// WireGuard returns one device for every name (or, made by
// NewWireGuards, one per name), or an error, to every kind of read; a
// liveness check gets the error SetAlive gave, or else that error.
type WireGuard struct {
	mu       sync.Mutex
	dev      *wgtypes.Device
	devs     map[string]*wgtypes.Device
	err      error
	aliveErr error
	reads    int
	alive    int
}

// NewWireGuard returns a WireGuard reader answering dev for every name.
func NewWireGuard(dev *wgtypes.Device) *WireGuard { return &WireGuard{dev: dev} }

// NewWireGuards returns a WireGuard reader answering the devices by name;
// any other name does not exist.
func NewWireGuards(devs map[string]*wgtypes.Device) *WireGuard { return &WireGuard{devs: devs} }

// Reads returns how many reads were asked.
func (w *WireGuard) Reads() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reads
}

// SetPeers gives the device n peers with distinct keys, no handshake.
func (w *WireGuard) SetPeers(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dev.Peers = Device(0, n, time.Time{}).Peers
}

// Set changes the answer.
func (w *WireGuard) Set(dev *wgtypes.Device, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dev, w.err = dev, err
}

// Device implements check.WireGuard. The device is returned under the
// asked name.
func (w *WireGuard) Device(_ context.Context, name string) (*wgtypes.Device, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reads++
	if w.err != nil {
		return nil, w.err
	}
	dev := w.dev
	if w.devs != nil {
		if dev = w.devs[name]; dev == nil {
			return nil, fs.ErrNotExist
		}
	}
	if dev == nil {
		return nil, nil
	}
	d := *dev
	d.Name = name
	d.Peers = append([]wgtypes.Peer(nil), dev.Peers...)
	return &d, nil
}

// Summary implements check.WireGuard: the device's summary as
// wireguard.Reader makes it.
func (w *WireGuard) Summary(ctx context.Context, name string, ignore ...wgtypes.Key) (wireguard.Summary, error) {
	d, err := w.Device(ctx, name)
	if err != nil {
		return wireguard.Summary{}, err
	}
	if d == nil {
		return wireguard.Summary{}, fmt.Errorf("fake device %s: not set", name)
	}
	return wireguard.FromWgctrl(d, ignore), nil
}

// Alive implements check.WireGuard: the error SetAlive gave, or the one
// Set gave.
func (w *WireGuard) Alive(context.Context, string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.alive++
	if w.aliveErr != nil {
		return w.aliveErr
	}
	return w.err
}

// SetAlive sets the liveness check's own answer (nil: Set's error).
func (w *WireGuard) SetAlive(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.aliveErr = err
}

// AliveCount returns how many liveness checks were answered.
func (w *WireGuard) AliveCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.alive
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

// Read implements check.Links.
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

// Prober answers the probe as set and records the devices it was given.
type Prober struct {
	Key wgtypes.Key

	mu   sync.Mutex
	ok   bool
	devs []*wireguard.Summary
}

// NewProber returns a Prober whose probes pass.
func NewProber(key wgtypes.Key) *Prober { return &Prober{Key: key, ok: true} }

// Probe implements check.Prober.
func (p *Prober) Probe(_ context.Context, dev *wireguard.Summary) health.Check {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.devs = append(p.devs, dev)
	if p.ok {
		return health.Check{Name: "probe", OK: true, Detail: "handshake answered"}
	}
	return health.Check{Name: "probe", Detail: "no handshake response from wg0 within 250ms"}
}

// PublicKey implements check.Prober.
func (p *Prober) PublicKey() wgtypes.Key { return p.Key }

// Set makes later probes pass or fail.
func (p *Prober) Set(ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ok = ok
}

// Devices returns the devices the probes were given, one per probe.
func (p *Prober) Devices() []*wireguard.Summary {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*wireguard.Summary(nil), p.devs...)
}
