package probe

import (
	"encoding/binary"
	"encoding/hex"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/blake2s"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testPrivateKey derives a fixed, clamped private key from a label.
func testPrivateKey(label string) PrivateKey {
	k := PrivateKey(blake2s.Sum256([]byte(label)))
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
	return k
}

// The fixed inputs of the test vector.
var (
	vecLocal     = testPrivateKey("wgbird probe")
	vecServer    = testPrivateKey("wgbird server")
	vecPSK       = PresharedKey(blake2s.Sum256([]byte("wgbird psk")))
	vecEphemeral = testPrivateKey("wgbird ephemeral")
	vecTime      = time.Date(2025, 6, 1, 12, 34, 56, 789_000_000, time.UTC)
	vecSender    = uint32(0x01020304)
)

func vectorInitiation(t testing.TB) ([]byte, *Handshake) {
	t.Helper()
	msg, hs, err := NewInitiation(vecLocal, vecServer.PublicKey(), vecPSK, vecEphemeral, vecTime, vecSender)
	if err != nil {
		t.Fatalf("NewInitiation: %v", err)
	}
	return msg, hs
}

func readGolden(t *testing.T, name string, got []byte) []byte {
	t.Helper()
	path := "testdata/" + name
	if *update {
		if err := os.WriteFile(path, []byte(hex.EncodeToString(got)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(s)))
	if err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	return b
}

func TestNewInitiationGolden(t *testing.T) {
	msg, _ := vectorInitiation(t)
	want := readGolden(t, "initiation.hex", msg)
	if diff := cmp.Diff(hex.EncodeToString(want), hex.EncodeToString(msg)); diff != "" {
		t.Errorf("initiation bytes (-want +got):\n%s", diff)
	}
	// The clear fields, independently of the crypto.
	ephPub := vecEphemeral.PublicKey()
	type fields struct {
		Len    int
		Type   []byte
		Sender uint32
		Eph    []byte
		MAC2   []byte
	}
	wantF := fields{InitiationSize, []byte{1, 0, 0, 0}, vecSender, ephPub[:], make([]byte, 16)}
	gotF := fields{len(msg), msg[0:4], binary.LittleEndian.Uint32(msg[4:8]), msg[8:40], msg[132:148]}
	if diff := cmp.Diff(wantF, gotF); diff != "" {
		t.Errorf("clear fields (-want +got):\n%s", diff)
	}
}

// TestGoldenAcceptedByWireguardGo proves the golden bytes right: a real
// wireguard-go device holding the server key, with the probe peer (and the
// preshared key) configured and no AllowedIPs, answers them, and the answer
// verifies.
func TestGoldenAcceptedByWireguardGo(t *testing.T) {
	golden := readGolden(t, "initiation.hex", nil)
	_, hs := vectorInitiation(t)
	r := newResponder(t, vecServer, peerConf{pub: vecLocal.PublicKey(), psk: vecPSK})
	if err := r.send(golden); err != nil {
		t.Fatal(err)
	}
	resp, ok := r.recv(5 * time.Second)
	if !ok {
		t.Fatalf("wireguard-go did not answer the golden initiation; its log:\n%s", r.log())
	}
	if len(resp) != ResponseSize || resp[0] != typeResponse {
		t.Fatalf("wireguard-go answered %d bytes of type %d, want a %d-byte response", len(resp), resp[0], ResponseSize)
	}
	if err := hs.ConsumeResponse(resp); err != nil {
		t.Fatalf("ConsumeResponse: %v", err)
	}
	if !r.logged("Received handshake initiation") {
		t.Errorf("wireguard-go did not log the initiation")
	}
	// The probe leaves no session behind: the handshake counts as complete
	// only once the initiator sends data, which a probe never does, so the
	// probe peer's last handshake stays zero.
	if s := r.uapi(t); !strings.Contains(s, "last_handshake_time_sec=0\n") || strings.Contains(s, "allowed_ip") {
		t.Errorf("wireguard-go state after the probe:\n%s\nwant last_handshake_time_sec=0 and no allowed_ip", s)
	}
}

func TestConsumeResponseRejects(t *testing.T) {
	golden := readGolden(t, "initiation.hex", nil)
	r := newResponder(t, vecServer, peerConf{pub: vecLocal.PublicKey(), psk: vecPSK})
	if err := r.send(golden); err != nil {
		t.Fatal(err)
	}
	resp, ok := r.recv(5 * time.Second)
	if !ok {
		t.Fatal("no response")
	}
	mutate := func(f func(b []byte)) []byte {
		b := append([]byte(nil), resp...)
		f(b)
		return b
	}
	remac := func(b []byte) {
		k := labelledHash(labelMAC1, vecLocal.PublicKey())
		copy(b[60:76], mac(k[:], b[:60]))
	}
	tests := []struct {
		name    string
		psk     PresharedKey
		b       []byte
		notOurs bool
		want    string
	}{
		{name: "valid", psk: vecPSK, b: resp},
		{name: "other preshared key", b: resp, want: "the empty payload does not decrypt (preshared key differs?)"},
		{name: "bad mac1", psk: vecPSK, b: mutate(func(b []byte) { b[70] ^= 1 }), want: "mac1 is wrong"},
		{name: "forged payload", psk: vecPSK, b: mutate(func(b []byte) { b[50] ^= 1; remac(b) }), want: "the empty payload does not decrypt (preshared key differs?)"},
		{name: "other ephemeral", psk: vecPSK, b: mutate(func(b []byte) { b[20] ^= 1; remac(b) }), want: "the empty payload does not decrypt (preshared key differs?)"},
		{name: "other receiver", psk: vecPSK, b: mutate(func(b []byte) { b[8]++ }), notOurs: true},
		{name: "short", psk: vecPSK, b: resp[:91], notOurs: true},
		{name: "initiation", psk: vecPSK, b: golden, notOurs: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, hs, err := NewInitiation(vecLocal, vecServer.PublicKey(), tt.psk, vecEphemeral, vecTime, vecSender)
			if err != nil {
				t.Fatal(err)
			}
			err = hs.ConsumeResponse(tt.b)
			switch {
			case tt.notOurs:
				if !isNotOurs(err) {
					t.Errorf("ConsumeResponse = %v, want ErrNotOurs", err)
				}
			case tt.want == "":
				if err != nil {
					t.Errorf("ConsumeResponse = %v, want nil", err)
				}
			default:
				got := ""
				if err != nil {
					got = err.Error()
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("ConsumeResponse error (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestWireguardGoIgnores checks what a probe cannot see: wireguard-go drops
// an initiation silently when the probe peer is absent or the server holds
// another key, so those cases surface as a missing response.
func TestWireguardGoIgnores(t *testing.T) {
	golden := readGolden(t, "initiation.hex", nil)
	tests := []struct {
		name   string
		server PrivateKey
		peers  []peerConf
		log    string
	}{
		{"probe peer absent", vecServer, []peerConf{{pub: testPrivateKey("someone").PublicKey()}}, "Received invalid initiation message"},
		{"other server key", testPrivateKey("rotated"), []peerConf{{pub: vecLocal.PublicKey(), psk: vecPSK}}, "Received packet with invalid mac1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newResponder(t, tt.server, tt.peers...)
			if err := r.send(golden); err != nil {
				t.Fatal(err)
			}
			if b, ok := r.recv(200 * time.Millisecond); ok {
				t.Fatalf("wireguard-go answered %d bytes, want silence", len(b))
			}
			if !r.logged(tt.log) {
				t.Errorf("wireguard-go log lacks %q:\n%s", tt.log, r.log())
			}
		})
	}
}

func TestTimestamp(t *testing.T) {
	ts := NewTimestamp(vecTime)
	// 2^62 + 10 + unix seconds; nanoseconds with the low 24 bits cleared.
	want := "40000000683c48fa2f000000"
	if diff := cmp.Diff(want, hex.EncodeToString(ts[:])); diff != "" {
		t.Errorf("TAI64N (-want +got):\n%s", diff)
	}
	later := NewTimestamp(vecTime.Add(20 * time.Millisecond))
	same := NewTimestamp(vecTime.Add(time.Millisecond))
	type order struct{ LaterAfter, SameAfter, NextAfter, NextBeforeLater bool }
	got := order{later.After(ts), same.After(ts), ts.next().After(ts), later.After(ts.next())}
	if diff := cmp.Diff(order{true, false, true, true}, got); diff != "" {
		t.Errorf("ordering (-want +got):\n%s", diff)
	}
	var max Timestamp
	for i := 8; i < 12; i++ {
		max[i] = 0xff
	}
	if diff := cmp.Diff("000000000000000100000000", hex.EncodeToString(func() []byte { n := max.next(); return n[:] }())); diff != "" {
		t.Errorf("carry (-want +got):\n%s", diff)
	}
}

func TestKeys(t *testing.T) {
	k := testPrivateKey("x")
	p, err := ParsePublicKey(k.PublicKey().String())
	if err != nil || p != k.PublicKey() {
		t.Errorf("ParsePublicKey(String()) = %v, %v", p, err)
	}
	q, err := ParsePrivateKey(k.String())
	if err != nil || q != k {
		t.Errorf("ParsePrivateKey(String()) = %v, %v", q, err)
	}
	for _, s := range []string{"", "not base64!", "AAAA"} {
		if _, err := ParsePublicKey(s); err == nil {
			t.Errorf("ParsePublicKey(%q) = nil error", s)
		}
	}
}

func BenchmarkNewInitiation(b *testing.B) {
	remote := vecServer.PublicKey()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := NewInitiation(vecLocal, remote, vecPSK, vecEphemeral, vecTime, vecSender); err != nil {
			b.Fatal(err)
		}
	}
}
