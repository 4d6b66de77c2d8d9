package probe

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/health"
	"github.com/wgbird/wgbird/internal/wireguard"
)

// tempDir is a temporary directory with this helper's prefix.
func tempDir(tb testing.TB) string {
	tb.Helper()
	d, err := os.MkdirTemp("", "wgtE-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// writeKey writes k to a 0600 file and returns its path.
func writeKey(tb testing.TB, dir, name, k string) string {
	tb.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(k+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

func testProber(tb testing.TB, cfg Config, local PrivateKey, dial func(context.Context, netip.AddrPort) (packetConn, error)) *Prober {
	tb.Helper()
	cfg.PrivateKeyFile = writeKey(tb, tempDir(tb), "probe.key", local.String())
	p, err := NewProber(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	p.dial = dial
	return p
}

// snapshot is what wgctrl would report for a device with these peers.
func snapshot(server PrivateKey, peers ...PublicKey) *wgtypes.Device {
	d := &wgtypes.Device{Name: "wg0", PrivateKey: wgtypes.Key(server), PublicKey: wgtypes.Key(server.PublicKey()), ListenPort: 51820}
	for _, p := range peers {
		d.Peers = append(d.Peers, wgtypes.Peer{PublicKey: wgtypes.Key(p)})
	}
	return d
}

// summarize is what the daemon's WireGuard check hands p for dev: its
// summary with p's peer among the ignored.
func summarize(p *Prober, dev *wgtypes.Device) *wireguard.Summary {
	if dev == nil {
		return nil
	}
	s := wireguard.FromWgctrl(dev, []wgtypes.Key{wgtypes.Key(p.PublicKey())})
	return &s
}

var durationRE = regexp.MustCompile(`\bin [0-9.]+(ns|µs|ms|s)`)

// normal replaces measured durations so checks compare exactly.
func normal(c health.Check) health.Check {
	c.Detail = durationRE.ReplaceAllString(c.Detail, "in D")
	return c
}

func TestProbeAgainstWireguardGo(t *testing.T) {
	local := vecLocal
	server := vecServer
	rotated := testPrivateKey("rotated")
	other := testPrivateKey("someone").PublicKey()
	tests := []struct {
		name  string
		cfg   Config
		peers []peerConf // configured on the real device
		dev   *wgtypes.Device
		want  health.Check
	}{
		{
			name:  "configured",
			peers: []peerConf{{pub: local.PublicKey()}},
			dev:   snapshot(server, other, local.PublicKey()),
			want:  health.Check{Name: "probe", OK: true, Detail: "handshake answered by 127.0.0.1:51820 in D"},
		},
		{
			name:  "configured with preshared key and explicit server key",
			cfg:   Config{ServerPublicKey: server.PublicKey().String(), PresharedKeyFile: "psk"},
			peers: []peerConf{{pub: local.PublicKey(), psk: vecPSK}},
			dev:   snapshot(server, local.PublicKey()),
			want:  health.Check{Name: "probe", OK: true, Detail: "handshake answered by 127.0.0.1:51820 in D"},
		},
		{
			name:  "no snapshot, explicit key and endpoint",
			cfg:   Config{Interface: "wg0", ServerPublicKey: server.PublicKey().String(), Endpoint: "127.0.0.1:51821"},
			peers: []peerConf{{pub: local.PublicKey()}},
			want:  health.Check{Name: "probe", OK: true, Detail: "handshake answered by 127.0.0.1:51821 in D"},
		},
		{
			name: "no snapshot, no server key",
			cfg:  Config{Interface: "wg0"},
			want: health.Check{Name: "probe", Detail: "cannot probe: wg0 was not read and no server public key is configured"},
		},
		{
			name: "no snapshot, no endpoint",
			cfg:  Config{Interface: "wg0", ServerPublicKey: server.PublicKey().String()},
			want: health.Check{Name: "probe", Detail: "cannot probe: wg0 was not read and no endpoint is configured"},
		},
		{
			name:  "probe peer absent",
			peers: []peerConf{{pub: other}},
			dev:   snapshot(server, other),
			want:  health.Check{Name: "probe", Detail: "probe peer " + local.PublicKey().String() + " is not configured on wg0"},
		},
		{
			name:  "probe peer absent, stale snapshot",
			cfg:   Config{Timeout: 100 * time.Millisecond},
			peers: []peerConf{{pub: other}},
			dev:   snapshot(server, other, local.PublicKey()),
			want:  health.Check{Name: "probe", Detail: "no handshake response within 100ms"},
		},
		{
			name:  "server key rotated",
			cfg:   Config{ServerPublicKey: server.PublicKey().String()},
			peers: []peerConf{{pub: local.PublicKey()}},
			dev:   snapshot(rotated, local.PublicKey()),
			want: health.Check{Name: "probe", Detail: "server public key is " + rotated.PublicKey().String() +
				", want " + server.PublicKey().String() + " (key rotated?)"},
		},
		{
			name:  "server key rotated, no snapshot",
			cfg:   Config{Interface: "wg0", ServerPublicKey: rotated.PublicKey().String(), Endpoint: "127.0.0.1:51820", Timeout: 100 * time.Millisecond},
			peers: []peerConf{{pub: local.PublicKey()}},
			want:  health.Check{Name: "probe", Detail: "no handshake response within 100ms"},
		},
		{
			name:  "preshared key differs",
			peers: []peerConf{{pub: local.PublicKey(), psk: vecPSK}},
			dev:   snapshot(server, local.PublicKey()),
			want: health.Check{Name: "probe", Detail: "handshake response from 127.0.0.1:51820 does not verify: " +
				"the empty payload does not decrypt (preshared key differs?)"},
		},
		{
			name: "no private key",
			dev:  &wgtypes.Device{Name: "wg0", ListenPort: 51820},
			want: health.Check{Name: "probe", Detail: "wg0 has no private key"},
		},
		{
			// wgctrl reports the public key of the zero private key.
			name: "no private key, as wgctrl reports it",
			dev:  &wgtypes.Device{Name: "wg0", ListenPort: 51820, PublicKey: wgtypes.Key(PrivateKey{}.PublicKey())},
			want: health.Check{Name: "probe", Detail: "wg0 has no private key"},
		},
		{
			name: "no listen port",
			dev:  &wgtypes.Device{Name: "wg0", PrivateKey: wgtypes.Key(server), PublicKey: wgtypes.Key(server.PublicKey()), Peers: []wgtypes.Peer{{PublicKey: wgtypes.Key(local.PublicKey())}}},
			want: health.Check{Name: "probe", Detail: "wg0 has no listen port"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newResponder(t, server, tt.peers...)
			cfg := tt.cfg
			if cfg.PresharedKeyFile != "" {
				cfg.PresharedKeyFile = writeKey(t, tempDir(t), "psk", PrivateKey(vecPSK).String())
			}
			p := testProber(t, cfg, local, r.dial)
			got := normal(p.Probe(context.Background(), summarize(p, tt.dev)))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Probe (-want +got):\n%s\nwireguard-go log:\n%s", diff, r.log())
			}
		})
	}
}

// TestProbeUnderLoad floods a real wireguard-go device with initiations that
// pass mac1 until it answers with cookie replies, and checks that the probe
// decrypts its cookie, retries with mac2 and gets a verified response.
func TestProbeUnderLoad(t *testing.T) {
	r := newResponder(t, vecServer, peerConf{pub: vecLocal.PublicKey()})
	mac1Key := labelledHash(labelMAC1, vecServer.PublicKey())
	for i := range 1000 {
		var b [InitiationSize]byte
		if _, err := rand.Read(b[8:116]); err != nil {
			t.Fatal(err)
		}
		b[0] = typeInitiation
		binary.LittleEndian.PutUint32(b[4:8], uint32(i)) // never a probe's index with overwhelming odds
		copy(b[116:132], mac(mac1Key[:], b[:116]))
		if err := r.send(b[:]); err != nil {
			t.Fatal(err)
		}
	}
	p := testProber(t, Config{Timeout: 5 * time.Second}, vecLocal, r.dial)
	got := normal(p.Probe(context.Background(), summarize(p, snapshot(vecServer, vecLocal.PublicKey()))))
	want := health.Check{Name: "probe", OK: true, Detail: "handshake answered by 127.0.0.1:51820 in D, after a cookie reply (server under load)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Probe (-want +got):\n%s", diff)
	}
}

// TestProbeTimestampMonotonic shows why a Prober remembers its last
// timestamp: wireguard-go drops an initiation whose timestamp is not later
// than the last accepted one, as after a clock step back.
func TestProbeTimestampMonotonic(t *testing.T) {
	r := newResponder(t, vecServer, peerConf{pub: vecLocal.PublicKey()})
	dev := snapshot(vecServer, vecLocal.PublicKey())
	ahead := testProber(t, Config{}, vecLocal, r.dial)
	ahead.last = NewTimestamp(time.Now().Add(time.Hour)) // sent before the clock stepped back an hour
	for i := range 2 {
		if c := ahead.Probe(context.Background(), summarize(ahead, dev)); !c.OK {
			t.Fatalf("probe %d after the clock step: %+v", i, c)
		}
		time.Sleep(25 * time.Millisecond) // wireguard-go's flood limit is 20ms per peer
	}
	fresh := testProber(t, Config{Timeout: 100 * time.Millisecond}, vecLocal, r.dial)
	got := fresh.Probe(context.Background(), summarize(fresh, dev))
	want := health.Check{Name: "probe", Detail: "no handshake response within 100ms"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Probe by a Prober without the memory (-want +got):\n%s", diff)
	}
	if !r.logged("handshake replay") {
		t.Errorf("wireguard-go did not log a replay:\n%s", r.log())
	}
}

// fakeConn answers each written packet with reply(packet), or fails reads
// with readErr.
type fakeConn struct {
	reply   func(b []byte) []byte
	readErr error
	mu      sync.Mutex
	queue   [][]byte
	wake    chan struct{}
	dl      time.Time
}

func (f *fakeConn) Write(b []byte) (int, error) {
	if f.reply != nil {
		if out := f.reply(b); out != nil {
			f.mu.Lock()
			f.queue = append(f.queue, out)
			f.mu.Unlock()
			f.poke()
		}
	}
	return len(b), nil
}

func (f *fakeConn) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fakeConn) SetReadDeadline(t time.Time) error {
	f.mu.Lock()
	f.dl = t
	f.mu.Unlock()
	f.poke()
	return nil
}

func (f *fakeConn) Read(b []byte) (int, error) {
	if f.readErr != nil {
		return 0, f.readErr
	}
	for {
		f.mu.Lock()
		if len(f.queue) > 0 {
			p := f.queue[0]
			f.queue = f.queue[1:]
			f.mu.Unlock()
			return copy(b, p), nil
		}
		wait := time.Until(f.dl)
		f.mu.Unlock()
		if wait <= 0 {
			return 0, os.ErrDeadlineExceeded
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-f.wake:
			t.Stop()
		}
	}
}

func (f *fakeConn) Close() error { return nil }

func fakeDial(f *fakeConn) func(context.Context, netip.AddrPort) (packetConn, error) {
	f.wake = make(chan struct{}, 1)
	return func(context.Context, netip.AddrPort) (packetConn, error) { return f, nil }
}

// cookieReply builds a cookie reply to an initiation as wireguard-go's
// CookieChecker.CreateReply does, with key the server's public key.
func cookieReply(init []byte, key PublicKey) []byte {
	b := make([]byte, CookieReplySize)
	b[0] = typeCookieReply
	copy(b[4:8], init[4:8])
	rand.Read(b[8:32])
	k := labelledHash(labelCookie, key)
	aead, _ := chacha20poly1305.NewX(k[:])
	cookie := make([]byte, 16)
	rand.Read(cookie)
	aead.Seal(b[32:32], b[8:32], cookie, init[116:132])
	return b
}

func TestProbeFakes(t *testing.T) {
	dev := snapshot(vecServer, vecLocal.PublicKey())
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		conn *fakeConn
		want health.Check
	}{
		{
			name: "cookie reply only",
			conn: &fakeConn{reply: func(b []byte) []byte {
				if b[132] != 0 { // the retry carries mac2: stay silent
					return nil
				}
				return cookieReply(b, vecServer.PublicKey())
			}},
			want: health.Check{Name: "probe", OK: true, Detail: "alive, unverified: 127.0.0.1:51820, under load, " +
				"answered with a cookie reply but not the retry with mac2 within 100ms"},
		},
		{
			name: "cookie reply under another key",
			conn: &fakeConn{reply: func(b []byte) []byte { return cookieReply(b, testPrivateKey("x").PublicKey()) }},
			want: health.Check{Name: "probe", Detail: "cookie reply from 127.0.0.1:51820 does not verify: the cookie does not decrypt"},
		},
		{
			name: "unrelated packets",
			conn: &fakeConn{reply: func(b []byte) []byte {
				c := cookieReply(b, vecServer.PublicKey())
				c[4]++ // another receiver
				return c
			}},
			want: health.Check{Name: "probe", Detail: "no handshake response within 100ms"},
		},
		{
			name: "connection refused",
			conn: &fakeConn{readErr: syscall.ECONNREFUSED},
			want: health.Check{Name: "probe", Hard: true, Detail: "nothing listens on 127.0.0.1:51820 (connection refused)"},
		},
		{
			name: "canceled",
			ctx:  canceled,
			conn: &fakeConn{},
			want: health.Check{Name: "probe", Detail: "probe canceled: context canceled"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			p := testProber(t, Config{Timeout: 100 * time.Millisecond}, vecLocal, fakeDial(tt.conn))
			got := p.Probe(ctx, summarize(p, dev))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Probe (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewProberErrors(t *testing.T) {
	dir := tempDir(t)
	good := writeKey(t, dir, "good.key", vecLocal.String())
	loose := writeKey(t, dir, "loose.key", vecLocal.String())
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := writeKey(t, dir, "garbage.key", "hello")
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{}, "creating probe: no private key file"},
		{Config{PrivateKeyFile: filepath.Join(dir, "missing")}, "creating probe: reading probe key: open " + filepath.Join(dir, "missing") + ": no such file or directory"},
		{Config{PrivateKeyFile: loose}, "creating probe: reading probe key: " + loose + " has mode 0644, want 0600 (chmod 600 " + loose + ")"},
		{Config{PrivateKeyFile: garbage}, "creating probe: reading probe key " + garbage + ": parsing key: illegal base64 data at input byte 4"},
		{Config{PrivateKeyFile: good, ServerPublicKey: "AAAA"}, "creating probe: server public key: parsing key: 3 bytes, want 32"},
		{Config{PrivateKeyFile: good, Endpoint: "localhost:51820"}, `creating probe: endpoint: ParseAddr("localhost"): unable to parse IP`},
		{Config{PrivateKeyFile: good}, ""},
	}
	for _, tt := range tests {
		_, err := NewProber(tt.cfg)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("NewProber(%+v) (-want +got):\n%s", tt.cfg, diff)
		}
	}
}

// BenchmarkProbe measures one probe end to end against an in-process
// wireguard-go device: building the initiation, the responder's work and
// verifying the response. Probes rotate over many probe peers, because
// wireguard-go ignores a peer's initiations closer than 20ms apart.
func BenchmarkProbe(b *testing.B) {
	const n = 128
	keys := make([]PrivateKey, n)
	peers := make([]peerConf, n)
	pubs := make([]PublicKey, n)
	for i := range n {
		k, err := NewPrivateKey()
		if err != nil {
			b.Fatal(err)
		}
		keys[i], pubs[i], peers[i] = k, k.PublicKey(), peerConf{pub: k.PublicKey()}
	}
	r := newResponder(b, vecServer, peers...)
	dev := snapshot(vecServer, pubs...)
	probers := make([]*Prober, n)
	for i := range n {
		probers[i] = testProber(b, Config{Timeout: time.Second}, keys[i], r.dial)
	}
	last := make([]time.Time, n)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		j := i % n
		i++
		if wait := 21*time.Millisecond - time.Since(last[j]); wait > 0 {
			b.StopTimer()
			time.Sleep(wait)
			b.StartTimer()
		}
		c := probers[j].Probe(context.Background(), summarize(probers[j], dev))
		last[j] = time.Now()
		if !c.OK {
			b.Fatalf("probe %d: %+v", i, c)
		}
	}
}
