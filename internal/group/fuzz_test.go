package group

import (
	"net/netip"
	"testing"
	"time"
)

// FuzzOpen: no input panics Open, and whatever opens satisfies the
// format's bounds and seals again to a datagram that opens the same.
func FuzzOpen(f *testing.F) {
	k, err := DeriveKey([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		f.Fatal(err)
	}
	good, _ := Seal(k, Message{Sender: 1, Seq: 1, Time: time.Unix(1, 0), State: Drained, Parts: 1,
		Peers: []Entry{{Endpoint: netip.MustParseAddrPort("203.0.113.9:40000"), HandshakeAge: -1}}})
	f.Add(good)
	f.Add([]byte("WGBG\x01\x00\x00\x00"))
	f.Add(make([]byte, MaxDatagram))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Open(k, b)
		if err != nil {
			return
		}
		if len(m.Peers) > MaxEntries || m.Part >= m.Parts || m.Parts > MaxParts || m.State > Drained {
			t.Fatalf("out of bounds: %+v", m)
		}
		again, err := Seal(k, m)
		if err != nil {
			t.Fatalf("re-sealing an opened message: %v", err)
		}
		if _, err := Open(k, again); err != nil {
			t.Fatalf("re-opening: %v", err)
		}
	})
}
