package wireguard

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// TestParseUAPIPeersCaptured reads the peers of a real wireguard-go's
// answer (testdata/uapi-get.txt): an IPv4 endpoint, none, and an IPv6
// one.
// eqAddrPort lets cmp compare endpoints.
var eqAddrPort = cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })

func TestParseUAPIPeersCaptured(t *testing.T) {
	raw, err := os.ReadFile("testdata/uapi-get.txt")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := parseUAPIPeers(bufio.NewReader(bytes.NewReader(raw)), 1)
	if err != nil {
		t.Fatalf("parseUAPIPeers: %v", err)
	}
	want := &Peers{ListenPort: 51820, Peers: []Peer{
		{Key: mustKey(t, "gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdyYBz6EA="), Endpoint: netip.MustParseAddrPort("10.0.9.2:51820")},
		{Key: mustKey(t, "pA2uyKyGQKJdLEcnqWt8E3DqqvsfBBBdR2PWZ/4tgU4=")},
		{Key: mustKey(t, "s4lw0tB6fQ5zLyFDPNDz4xhTQkHRKjeKeVAtNPtbr2M="), Endpoint: netip.MustParseAddrPort("[fd00::7]:40000")},
	}}
	if diff := cmp.Diff(want, ps, eqAddrPort); diff != "" {
		t.Errorf("peers (-want +got):\n%s", diff)
	}
}

// TestParseUAPIPeers: handshakes, counters, an endpoint in IPv4-mapped
// form (unmapped) and the same peers as wgctrl's structures would give.
func TestParseUAPIPeers(t *testing.T) {
	now := time.Unix(1764585417, 123456789)
	raw := uapiText(2, now)
	raw = bytes.Replace(raw, []byte("endpoint=192.0.2.2:40001"), []byte("endpoint=[::ffff:192.0.2.2]:40001"), 1)
	ps, err := parseUAPIPeers(bufio.NewReader(bytes.NewReader(raw)), 1)
	if err != nil {
		t.Fatalf("parseUAPIPeers: %v", err)
	}
	want := &Peers{ListenPort: 51820, Peers: []Peer{
		{Key: wgtypes.Key{0, 0, 0, 9}, Endpoint: netip.MustParseAddrPort("192.0.2.1:40000"), LastHandshake: now, RxBytes: 2000, TxBytes: 1000},
		{Key: wgtypes.Key{1, 0, 0, 9}, Endpoint: netip.MustParseAddrPort("192.0.2.2:40001"), LastHandshake: now.Add(-time.Second), RxBytes: 2001, TxBytes: 1001},
	}}
	if diff := cmp.Diff(want, ps, eqAddrPort); diff != "" {
		t.Errorf("peers (-want +got):\n%s", diff)
	}
	wd := &wgtypes.Device{ListenPort: 51820, Peers: []wgtypes.Peer{
		{PublicKey: wgtypes.Key{0, 0, 0, 9}, Endpoint: &net.UDPAddr{IP: net.ParseIP("192.0.2.1"), Port: 40000}, LastHandshakeTime: now, ReceiveBytes: 2000, TransmitBytes: 1000,
			AllowedIPs: []net.IPNet{{IP: net.IPv4(10, 0, 0, 1), Mask: net.CIDRMask(32, 32)}}},
		{PublicKey: wgtypes.Key{1, 0, 0, 9}, Endpoint: &net.UDPAddr{IP: net.ParseIP("::ffff:192.0.2.2"), Port: 40001}, LastHandshakeTime: now.Add(-time.Second), ReceiveBytes: 2001, TransmitBytes: 1001},
	}}
	if diff := cmp.Diff(want, PeersFromWgctrl(wd), eqAddrPort); diff != "" {
		t.Errorf("PeersFromWgctrl (-want +got):\n%s", diff)
	}
}

func TestParseUAPIPeersErrors(t *testing.T) {
	key := strings.Repeat("ab", 32)
	for _, tt := range []struct{ name, in, want string }{
		{"bad endpoint", "public_key=" + key + "\nendpoint=nowhere\nerrno=0\n\n", `UAPI line 2: endpoint: bad endpoint "nowhere"`},
		{"bad counter", "public_key=" + key + "\nrx_bytes=-5\nerrno=0\n\n", `UAPI line 2: rx_bytes: bad number "-5"`},
		{"summary errors too", "public_key=" + key + "\nlast_handshake_time_nsec=1000000000\nerrno=0\n\n", "UAPI line 2: last_handshake_time_nsec: 1000000000 nanoseconds"},
		{"errno", "errno=2\n\n", "UAPI error 2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseUAPIPeers(bufio.NewReader(strings.NewReader(tt.in)), 0)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("parseUAPIPeers(%.40q) error = %v, want one starting %q", tt.in, err, tt.want)
			}
		})
	}
	// The summary does not read endpoints or counters: a bad one is no
	// error there.
	if _, err := parseUAPI(bufio.NewReader(strings.NewReader("public_key="+key+"\nendpoint=nowhere\nerrno=0\n\n")), nil); err != nil {
		t.Errorf("parseUAPI with a bad endpoint: %v", err)
	}
}

// Reader.Peers reads wireguard-go over UAPI and kernel WireGuard (no
// socket) through wgctrl, and shares a wgctrl read in flight.
func TestReaderPeers(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1764585417, 0)
	fake := newFakeUAPI(t, dir, "wg0", uapiText(3, now))
	kdev := &wgtypes.Device{Name: "wg1", ListenPort: 51821, Peers: []wgtypes.Peer{{PublicKey: wgtypes.Key{7}, ReceiveBytes: 5}}}
	fc := newFakeClient(kdev)
	r := newReader(fc, dir)
	defer r.Close()

	ps, err := r.Peers(withTimeout(t, time.Second), "wg0")
	if err != nil {
		t.Fatalf("Peers(wg0): %v", err)
	}
	if ps.Name != "wg0" || ps.ListenPort != 51820 || len(ps.Peers) != 3 || ps.Peers[2].TxBytes != 1002 {
		t.Errorf("Peers(wg0) = %+v, want wg0's 3 peers on 51820", ps)
	}
	if n := fake.gets.Load(); n != 1 {
		t.Errorf("%d UAPI gets, want 1", n)
	}
	if n := fc.callCount("wg0"); n != 0 {
		t.Errorf("wireguard-go device read %d times through wgctrl, want 0", n)
	}
	ps, err = r.Peers(withTimeout(t, time.Second), "wg1")
	if err != nil {
		t.Fatalf("Peers(wg1): %v", err)
	}
	want := &Peers{Name: "wg1", ListenPort: 51821, Peers: []Peer{{Key: wgtypes.Key{7}, RxBytes: 5}}}
	if diff := cmp.Diff(want, ps, eqAddrPort); diff != "" {
		t.Errorf("Peers(kernel device) (-want +got):\n%s", diff)
	}
	// A wgctrl read in flight answers Peers too: the read takes 500 ms,
	// and Peers asks a few milliseconds into it.
	fc.mu.Lock()
	fc.delay = 500 * time.Millisecond
	fc.mu.Unlock()
	devDone := make(chan error, 1)
	go func() { _, err := r.Device(withTimeout(t, 5*time.Second), "wg1"); devDone <- err }()
	waitFor(t, "the wgctrl read in flight", func() bool { return fc.callCount("wg1") == 2 })
	ps, err = r.Peers(withTimeout(t, 5*time.Second), "wg1")
	if err != nil {
		t.Fatalf("Peers sharing a wgctrl read: %v", err)
	}
	if diff := cmp.Diff(want, ps, eqAddrPort); diff != "" {
		t.Errorf("Peers sharing a wgctrl read (-want +got):\n%s", diff)
	}
	if err := <-devDone; err != nil {
		t.Fatalf("Device(wg1): %v", err)
	}
	if n := fc.callCount("wg1"); n != 2 {
		t.Errorf("wg1 read %d times through wgctrl, want 2 (the second shared)", n)
	}
}

func benchPeers(b *testing.B, peers int) {
	dir := b.TempDir()
	newFakeUAPI(b, dir, "wg0", uapiText(peers, time.Now()))
	r := newReader(newFakeClient(), dir)
	defer r.Close()
	b.ReportAllocs()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ps, err := r.Peers(ctx, "wg0")
		cancel()
		if err != nil || len(ps.Peers) != peers {
			b.Fatalf("Peers = %v, %v", ps, err)
		}
	}
}

// BenchmarkPeers1kPeers and BenchmarkPeers10kPeers measure continuity's
// full read (every 10 s, and when the figures move): dial, get, parse
// every peer's key, endpoint, handshake and counters. As for
// BenchmarkSummary1kPeers, an in-process server writes the answer.
func BenchmarkPeers1kPeers(b *testing.B)  { benchPeers(b, 1000) }
func BenchmarkPeers10kPeers(b *testing.B) { benchPeers(b, 10000) }
