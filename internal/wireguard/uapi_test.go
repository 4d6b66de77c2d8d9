package wireguard

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

func mustKey(t testing.TB, s string) wgtypes.Key {
	t.Helper()
	k, err := wgtypes.ParseKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestParseUAPICaptured parses the answer of a real wireguard-go
// (testdata/uapi-get.txt: wireguard-go v0.0.20220316 (Debian 12) with a key, a port
// and three peers, the last standing for the probe's).
func TestParseUAPICaptured(t *testing.T) {
	raw, err := os.ReadFile("testdata/uapi-get.txt")
	if err != nil {
		t.Fatal(err)
	}
	probe := mustKey(t, "s4lw0tB6fQ5zLyFDPNDz4xhTQkHRKjeKeVAtNPtbr2M=")
	s, err := parseUAPI(bufio.NewReader(bytes.NewReader(raw)), []wgtypes.Key{probe})
	if err != nil {
		t.Fatalf("parseUAPI: %v", err)
	}
	// No client has handshaken yet (the capture has none; the
	// synthetic answers of uapiText have handshakes).
	want := Summary{
		PrivateKey: true, PublicKey: mustKey(t, "LV3LfrP1d5vNMa/vHJRrnaZtqerHnppTUT+F6w1LOw0="), ListenPort: 51820,
		Peers: 3, Ignored: []wgtypes.Key{probe}, Counted: 2,
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	// Without an ignore list every peer counts.
	s, err = parseUAPI(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Counted != 3 || s.Ignored != nil {
		t.Errorf("summary without ignore list = %+v, want 3 counted", s)
	}
	// The summary of a wgctrl read of the same device.
	wd := &wgtypes.Device{Name: "wg0", PrivateKey: mustKey(t, "oEdZEQbmzBP6mUTI0t1qTEsd0LgMmvAsQZkJ5KNL/G8="), ListenPort: 51820,
		Peers: []wgtypes.Peer{{PublicKey: mustKey(t, "gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdyYBz6EA=")}, {PublicKey: mustKey(t, "pA2uyKyGQKJdLEcnqWt8E3DqqvsfBBBdR2PWZ/4tgU4=")}, {PublicKey: probe}}}
	wd.PublicKey = wd.PrivateKey.PublicKey()
	want.Name = "wg0"
	if diff := cmp.Diff(want, FromWgctrl(wd, []wgtypes.Key{probe})); diff != "" {
		t.Errorf("FromWgctrl (-want +got):\n%s", diff)
	}
}

// TestParseUAPIHandshakes: the newest handshake with and without the
// ignored peer, which is the newest of all.
func TestParseUAPIHandshakes(t *testing.T) {
	now := time.Unix(1764585417, 123456789)
	raw := uapiText(4, now) // handshakes now, 1 s, 2 s and 3 s ago
	ignore := []wgtypes.Key{{0, 0, 0, 9}}
	s, err := parseUAPI(bufio.NewReader(bytes.NewReader(raw)), ignore)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Newest.Equal(now) || !s.NewestCounted.Equal(now.Add(-time.Second)) || s.Counted != 3 || len(s.Ignored) != 1 {
		t.Errorf("summary %+v, want newest %v, newest counted 1 s before, 3 counted, 1 ignored", s, now)
	}
}

func TestParseUAPIErrors(t *testing.T) {
	key := strings.Repeat("ab", 32)
	for _, tt := range []struct{ name, in, want string }{
		{"empty", "", "UAPI answer ends after 0 lines without errno"},
		{"no errno", "listen_port=1\n", "UAPI answer ends after 1 lines without errno"},
		{"unterminated", "listen_port=1", "UAPI line 1: no newline"},
		{"no empty line", "errno=0\n", "UAPI line 2: no empty line after errno=0"},
		{"errno", "errno=2\n\n", "UAPI error 2"},
		{"not key=value", "hello\nerrno=0\n\n", `UAPI line 1: "hello" is not key=value`},
		{"short key", "private_key=abcd\nerrno=0\n\n", "UAPI line 1: private_key: key of 4 hex digits, want 64"},
		{"bad hex", "public_key=" + strings.Repeat("zz", 32) + "\nerrno=0\n\n", "UAPI line 1: public_key: bad key"},
		{"bad port", "listen_port=70000\nerrno=0\n\n", `UAPI line 1: listen_port: bad port "70000"`},
		{"negative", "public_key=" + key + "\nlast_handshake_time_sec=-1\nerrno=0\n\n", `UAPI line 2: last_handshake_time_sec: bad number "-1"`},
		{"overflow", "public_key=" + key + "\nlast_handshake_time_sec=9223372036854775808\nerrno=0\n\n", "UAPI line 2: last_handshake_time_sec: number"},
		{"nanoseconds", "public_key=" + key + "\nlast_handshake_time_nsec=1000000000\nerrno=0\n\n", "UAPI line 2: last_handshake_time_nsec: 1000000000 nanoseconds"},
		{"long line", strings.Repeat("x", 600) + "\n", "UAPI line 1: longer than 512 bytes"},
		{"very long line", strings.Repeat("x", 70000) + "\n", "UAPI line 1: longer than 512 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseUAPI(bufio.NewReaderSize(strings.NewReader(tt.in), 4096), nil)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("parseUAPI(%.40q) error = %v, want one starting %q", tt.in, err, tt.want)
			}
		})
	}
	var ue *UAPIError
	if _, err := parseUAPI(bufio.NewReader(strings.NewReader("errno=2\n\n")), nil); !errors.As(err, &ue) || ue.Errno != 2 {
		t.Errorf("errno=2: error = %v, want a *UAPIError with Errno 2", err)
	}
}

// uapiText writes a device as wireguard-go's IpcGetOperation does: every
// peer with a preshared key, an endpoint, a handshake, counters, a
// keepalive and two allowed IPs.
func uapiText(peers int, now time.Time) []byte {
	var b bytes.Buffer
	priv := [32]byte{1, 2, 3}
	fmt.Fprintf(&b, "private_key=%s\nlisten_port=51820\n", hex.EncodeToString(priv[:]))
	for i := range peers {
		k := [32]byte{byte(i), byte(i >> 8), byte(i >> 16), 9}
		fmt.Fprintf(&b, "public_key=%s\npreshared_key=%s\nprotocol_version=1\n", hex.EncodeToString(k[:]), strings.Repeat("0", 64))
		fmt.Fprintf(&b, "endpoint=192.0.2.%d:%d\n", i%250+1, 40000+i%20000)
		hs := now.Add(-time.Duration(i%180) * time.Second)
		fmt.Fprintf(&b, "last_handshake_time_sec=%d\nlast_handshake_time_nsec=%d\n", hs.Unix(), hs.Nanosecond())
		fmt.Fprintf(&b, "tx_bytes=%d\nrx_bytes=%d\npersistent_keepalive_interval=25\n", 1000+i, 2000+i)
		fmt.Fprintf(&b, "allowed_ip=10.%d.%d.%d/32\nallowed_ip=fd00::%x/128\n", 100+i>>16, i>>8&0xff, i&0xff, i)
	}
	b.WriteString("errno=0\n\n")
	return b.Bytes()
}

// fakeUAPI serves wireguard-go's UAPI on dir/name.sock: get answers with
// text, set with errno=0, and while hung it accepts and never answers.
type fakeUAPI struct {
	ln    net.Listener
	text  atomic.Pointer[[]byte]
	conns atomic.Int64 // connections accepted
	once  atomic.Bool  // close each connection after one request
	gets  atomic.Int64
	sets  atomic.Int64

	mu   sync.Mutex
	hung chan struct{} // non-nil while hung
}

func newFakeUAPI(t testing.TB, dir, name string, text []byte) *fakeUAPI {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(dir, name+".sock"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeUAPI{ln: ln}
	f.text.Store(&text)
	t.Cleanup(func() { ln.Close(); f.release() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.conns.Add(1)
			go f.serve(c)
		}
	}()
	return f
}

func (f *fakeUAPI) hang() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hung == nil {
		f.hung = make(chan struct{})
	}
}

func (f *fakeUAPI) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hung != nil {
		close(f.hung)
		f.hung = nil
	}
}

func (f *fakeUAPI) serve(c net.Conn) {
	defer c.Close()
	f.mu.Lock()
	hung := f.hung
	f.mu.Unlock()
	if hung != nil {
		<-hung
	}
	br := bufio.NewReader(c)
	for {
		op, err := br.ReadString('\n')
		if err != nil {
			return
		}
		switch op {
		case "get=1\n":
			if b, err := br.ReadByte(); err != nil || b != '\n' {
				return
			}
			f.gets.Add(1)
			c.Write(*f.text.Load())
		case "set=1\n":
			if l, err := br.ReadString('\n'); err != nil || l != "\n" {
				return
			}
			f.sets.Add(1)
			io.WriteString(c, "errno=0\n\n")
			if f.once.Load() {
				return
			}
		default:
			return
		}
	}
}

func TestReaderUAPI(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1764585417, 0)
	fake := newFakeUAPI(t, dir, "wg0", uapiText(3, now))
	r := newReader(newFakeClient(), dir)
	defer r.Close()
	ignore := wgtypes.Key{1, 0, 0, 9}

	if err := r.Alive(withTimeout(t, time.Second), "wg0"); err != nil {
		t.Fatalf("Alive: %v", err)
	}
	if n := fake.sets.Load(); n != 1 {
		t.Errorf("Alive sent %d UAPI sets, want 1 (an empty one)", n)
	}
	s, err := r.Summary(withTimeout(t, time.Second), "wg0", ignore)
	if err != nil {
		t.Fatalf("Summary: %v", err)
	}
	want := Summary{Name: "wg0", PrivateKey: true, PublicKey: wgtypes.Key([32]byte{1, 2, 3}).PublicKey(), ListenPort: 51820,
		Peers: 3, Newest: now, Ignored: []wgtypes.Key{ignore}, Counted: 2, NewestCounted: now}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("Summary (-want +got):\n%s", diff)
	}
	// A device without a socket is read through wgctrl, and Alive does
	// no I/O for it.
	if _, err := r.Summary(withTimeout(t, time.Second), "wg9"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Summary(no socket, no kernel device) error = %v, want os.ErrNotExist", err)
	}
	if err := r.Alive(withTimeout(t, time.Second), "wg9"); err != nil {
		t.Errorf("Alive(no socket) = %v, want nil", err)
	}
	// A stale socket refuses connections.
	stale := filepath.Join(dir, "wg8.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if err := r.Alive(withTimeout(t, time.Second), "wg8"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Alive(stale socket) error = %v, want ECONNREFUSED", err)
	}
	if _, err := r.Summary(withTimeout(t, time.Second), "wg8"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Summary(stale socket) error = %v, want ECONNREFUSED", err)
	}
	if _, err := r.Summary(withTimeout(t, time.Second), "../wg0"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Summary(../wg0) error = %v, want os.ErrNotExist", err)
	}
}

// TestReaderUAPIHung is a hung wireguard-go: the liveness check misses
// its deadline, and every read after it, of any kind, shares the one
// connection in flight instead of dialing another.
func TestReaderUAPIHung(t *testing.T) {
	dir := t.TempDir()
	fake := newFakeUAPI(t, dir, "wg0", uapiText(2, time.Now()))
	r := newReader(newFakeClient(), dir)
	defer r.Close()
	fake.hang()

	const allow = 50 * time.Millisecond
	start := time.Now()
	err := r.Alive(withTimeout(t, allow), "wg0")
	var te *TimeoutError
	if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Alive(hung) error = %v, want a *TimeoutError", err)
	}
	if el := time.Since(start); el < allow || el > allow+200*time.Millisecond {
		t.Errorf("Alive(hung) returned after %v, want about %v", el, allow)
	}
	for range 3 {
		start := time.Now()
		if _, err := r.Summary(withTimeout(t, allow), "wg0"); !errors.As(err, &te) {
			t.Fatalf("Summary while the liveness read hangs: %v, want a *TimeoutError", err)
		}
		if _, err := r.Device(withTimeout(t, allow), "wg0"); !errors.As(err, &te) {
			t.Fatalf("Device while the liveness read hangs: %v, want a *TimeoutError", err)
		}
		if el := time.Since(start); el > allow {
			t.Errorf("reads joining a read pending longer than they allow took %v, want them to fail at once", el)
		}
	}
	if n := fake.conns.Load(); n != 1 {
		t.Errorf("connections to the hung device = %d, want 1", n)
	}
	if n := r.inFlightCount(); n != 1 {
		t.Errorf("reads in flight = %d, want 1", n)
	}

	// Resumed, it answers the pending set, and a summary then reads it.
	fake.release()
	s, err := r.Summary(withTimeout(t, time.Second), "wg0")
	if err != nil || s.Peers != 2 {
		t.Fatalf("Summary after release = %+v, %v; want 2 peers", s, err)
	}
	waitFor(t, "no read in flight", func() bool { return r.inFlightCount() == 0 })
	if g, st := fake.gets.Load(), fake.sets.Load(); g != 1 || st != 1 {
		t.Errorf("after release: %d gets and %d sets, want 1 and 1", g, st)
	}
}

// TestSummaryWaitsForLiveness: a summary asked while a liveness read is
// in flight on a healthy device waits for it and then reads, on a
// connection of its own, one at a time.
func TestSummaryAfterLiveness(t *testing.T) {
	dir := t.TempDir()
	fake := newFakeUAPI(t, dir, "wg0", uapiText(5, time.Now()))
	r := newReader(newFakeClient(), dir)
	defer r.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := withTimeout(t, 2*time.Second)
			switch i % 3 {
			case 0:
				errs <- r.Alive(ctx, "wg0")
			case 1:
				s, err := r.Summary(ctx, "wg0")
				if err == nil && s.Peers != 5 {
					err = fmt.Errorf("summary of %d peers, want 5", s.Peers)
				}
				errs <- err
			default:
				errs <- r.Alive(ctx, "wg0")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	t.Logf("40 concurrent reads: %d connections, %d gets, %d sets", fake.conns.Load(), fake.gets.Load(), fake.sets.Load())
}

func FuzzParseUAPI(f *testing.F) {
	if raw, err := os.ReadFile("testdata/uapi-get.txt"); err == nil {
		f.Add(raw)
	}
	f.Add(uapiText(2, time.Unix(1e9, 5)))
	f.Add([]byte("errno=0\n\n"))
	f.Add([]byte("private_key=\nerrno=1\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		ignore := []wgtypes.Key{{0, 0, 0, 9}}
		s, err := parseUAPI(bufio.NewReaderSize(bytes.NewReader(in), 1024), ignore)
		if err != nil {
			return
		}
		if s.Counted+len(s.Ignored) > s.Peers || len(s.Ignored) > len(ignore) {
			t.Errorf("summary %+v: counted and ignored do not add up to the peers", s)
		}
		if s.NewestCounted.After(s.Newest) {
			t.Errorf("summary %+v: newest counted handshake after the newest", s)
		}
		if !s.PrivateKey && s.PublicKey != (wgtypes.Key{}) {
			t.Errorf("public key %v without a private key", s.PublicKey)
		}
		if s.ListenPort < 0 || s.ListenPort > 65535 {
			t.Errorf("listen port %d", s.ListenPort)
		}
		// The peers read of the same answer, where it parses, agrees.
		ps, err := parseUAPIPeers(bufio.NewReaderSize(bytes.NewReader(in), 1024), 0)
		if err != nil {
			return
		}
		if len(ps.Peers) != s.Peers || ps.ListenPort != s.ListenPort {
			t.Errorf("peers read: %d peers on port %d, summary: %d on %d", len(ps.Peers), ps.ListenPort, s.Peers, s.ListenPort)
		}
		for _, p := range ps.Peers {
			if p.LastHandshake.After(s.Newest) || p.RxBytes < 0 || p.TxBytes < 0 || p.Endpoint.Addr().Is4In6() {
				t.Errorf("peer %+v: handshake after the newest %v, negative counters or a mapped address", p, s.Newest)
			}
		}
	})
}

func benchUAPI(b *testing.B, peers int) {
	dir := b.TempDir()
	newFakeUAPI(b, dir, "wg0", uapiText(peers, time.Now()))
	r := newReader(newFakeClient(), dir)
	defer r.Close()
	ignore := wgtypes.Key{1, 0, 0, 9}
	b.ReportAllocs()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := r.Summary(ctx, "wg0", ignore)
		cancel()
		if err != nil || s.Peers != peers {
			b.Fatalf("Summary = %+v, %v", s, err)
		}
	}
}

// BenchmarkSummary1kPeers and BenchmarkSummary10kPeers measure the read
// the service loop runs every interval: dial the UAPI socket, get, parse
// the summary. The answer comes from an in-process server writing text
// prepared beforehand, so the figures are wgbird's own cost (a real
// wireguard-go adds its time to write the text: see
// BenchmarkDevice10kPeers in the integration tests).
func BenchmarkSummary1kPeers(b *testing.B)  { benchUAPI(b, 1000) }
func BenchmarkSummary10kPeers(b *testing.B) { benchUAPI(b, 10000) }

// BenchmarkParseSummary10kPeers is the parser alone.
func BenchmarkParseSummary10kPeers(b *testing.B) {
	raw := uapiText(10000, time.Now())
	br := bufio.NewReaderSize(nil, bufSize)
	rd := bytes.NewReader(raw)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(raw)
		br.Reset(rd)
		if s, err := parseUAPI(br, nil); err != nil || s.Peers != 10000 {
			b.Fatalf("parseUAPI = %+v, %v", s, err)
		}
	}
}

// BenchmarkAlive is the liveness check: an empty UAPI set answered with
// errno=0.
func BenchmarkAlive(b *testing.B) {
	dir := b.TempDir()
	newFakeUAPI(b, dir, "wg0", uapiText(10000, time.Now()))
	r := newReader(newFakeClient(), dir)
	defer r.Close()
	b.ReportAllocs()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := r.Alive(ctx, "wg0")
		cancel()
		if err != nil {
			b.Fatalf("Alive: %v", err)
		}
	}
}

// The liveness check keeps its connection: wireguard-go answers one
// request after another on it. One the device closed is dialed anew at
// once, not reported as a failure.
func TestAliveKeepsItsConnection(t *testing.T) {
	dir := t.TempDir()
	fake := newFakeUAPI(t, dir, "wg0", uapiText(1, time.Unix(1764585417, 0)))
	r := newReader(newFakeClient(), dir)
	defer r.Close()
	for i := range 3 {
		if err := r.Alive(withTimeout(t, time.Second), "wg0"); err != nil {
			t.Fatalf("Alive %d: %v", i, err)
		}
	}
	if c, n := fake.conns.Load(), fake.sets.Load(); c != 1 || n != 3 {
		t.Errorf("3 checks: %d connections, %d sets; want 1 and 3", c, n)
	}
	// From now on the device closes each connection after its answer:
	// the kept one serves once more, then every check dials.
	fake.once.Store(true)
	for i := range 3 {
		if err := r.Alive(withTimeout(t, time.Second), "wg0"); err != nil {
			t.Errorf("Alive after the device closed the connection (%d): %v", i, err)
		}
	}
	if c := fake.conns.Load(); c != 3 {
		t.Errorf("%d connections after three one-shot answers, want 3", c)
	}
	r.Close()
	r.mu.Lock()
	left := len(r.live)
	r.mu.Unlock()
	if left != 0 {
		t.Errorf("Close left %d kept connections", left)
	}
}

// Reads and liveness checks share the one kept connection; one the device
// closed after its last answer is dialed anew without an error.
func TestReadsShareTheConnection(t *testing.T) {
	dir := t.TempDir()
	fake := newFakeUAPI(t, dir, "wg0", uapiText(3, time.Unix(1764585417, 0)))
	r := newReader(newFakeClient(), dir)
	defer r.Close()
	steps := []func() error{
		func() error { _, err := r.Summary(withTimeout(t, time.Second), "wg0"); return err },
		func() error { return r.Alive(withTimeout(t, time.Second), "wg0") },
		func() error { _, err := r.Peers(withTimeout(t, time.Second), "wg0"); return err },
		func() error { _, err := r.Summary(withTimeout(t, time.Second), "wg0"); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if c, g, s := fake.conns.Load(), fake.gets.Load(), fake.sets.Load(); c != 1 || g != 3 || s != 1 {
		t.Errorf("%d connections, %d gets, %d sets; want 1, 3 and 1", c, g, s)
	}
	fake.once.Store(true) // closes after each set from now on
	for i, step := range []func() error{steps[1], steps[0], steps[1], steps[0]} {
		if err := step(); err != nil {
			t.Errorf("after the device closed the connection (%d): %v", i, err)
		}
	}
	if c := fake.conns.Load(); c != 3 {
		t.Errorf("%d connections after two closed ones, want 3", c)
	}
}

// publicKeys derives a private key's public key once, keyed by the
// private key's hash, and stays bounded.
func TestPublicKeys(t *testing.T) {
	var c publicKeys
	for i := range 3 * maxPublicKeys {
		priv := [32]byte{byte(i), 7}
		want := wgtypes.Key(priv).PublicKey()
		for range 2 {
			if got := c.public(&priv); got != want {
				t.Fatalf("key %d: public = %v, want %v", i, got, want)
			}
		}
		if len(c.m) > maxPublicKeys {
			t.Fatalf("%d keys remembered, want at most %d", len(c.m), maxPublicKeys)
		}
	}
	for sum := range c.m {
		var zero [32]byte
		if sum == zero {
			t.Error("a zero hash remembered")
		}
	}
	// Without a cache, every call derives.
	var none *publicKeys
	priv := [32]byte{1, 2, 3}
	if got, want := none.public(&priv), wgtypes.Key(priv).PublicKey(); got != want {
		t.Errorf("nil cache: public = %v, want %v", got, want)
	}
}
