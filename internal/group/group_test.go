package group

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	t0     = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s1     = netip.MustParseAddr("10.0.5.1")
	s2     = netip.MustParseAddr("10.0.7.1")
	client = netip.MustParseAddrPort("203.0.113.9:40000")
)

func testKey(t *testing.T, secret string) Key {
	t.Helper()
	k, err := DeriveKey([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func entry(b byte, ep netip.AddrPort) Entry {
	var p [32]byte
	p[0] = b
	return Entry{Peer: p, Endpoint: ep, HandshakeAge: 3 * time.Second, ActivityAge: 100 * time.Millisecond, Index: 0xdeadbeef}
}

func msg(sender, seq uint64, at time.Time, peers ...Entry) Message {
	return Message{Sender: sender, Seq: seq, Time: at, State: Announced, Part: 0, Parts: 1, Peers: peers}
}

func TestSealOpenRoundTrip(t *testing.T) {
	k := testKey(t, "0123456789abcdef0123456789abcdef")
	m := msg(7, 1, t0, entry(1, client), entry(2, netip.MustParseAddrPort("[2001:db8::9]:51820")))
	m.Peers[1].HandshakeAge = -1
	b, err := Seal(k, m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Open(k, b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }), cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	full := msg(7, 2, t0)
	for i := range MaxEntries {
		full.Peers = append(full.Peers, entry(byte(i), client))
	}
	if b, err := Seal(k, full); err != nil || len(b) != MaxDatagram {
		t.Errorf("a full datagram: %d bytes, %v; want %d", len(b), err, MaxDatagram)
	}
	full.Peers = append(full.Peers, entry(99, client))
	if _, err := Seal(k, full); !errors.Is(err, ErrTooMany) {
		t.Errorf("Seal of %d entries: %v, want ErrTooMany", len(full.Peers), err)
	}
}

func TestOpenRefusesForgeries(t *testing.T) {
	k := testKey(t, "0123456789abcdef0123456789abcdef")
	b, err := Seal(k, msg(7, 1, t0, entry(1, client)))
	if err != nil {
		t.Fatal(err)
	}
	other := testKey(t, "another group's secret, 32 bytes")
	if _, err := Open(other, b); !errors.Is(err, ErrAuth) {
		t.Errorf("another key: %v, want ErrAuth", err)
	}
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x40
		if _, err := Open(k, c); err == nil {
			t.Fatalf("a datagram with byte %d flipped opened", i)
		}
	}
	if _, err := Open(k, b[:len(b)-1]); err == nil {
		t.Error("a truncated datagram opened")
	}
	if _, err := Open(k, append(bytes.Clone(b), make([]byte, MaxDatagram)...)); !errors.Is(err, ErrLong) {
		t.Errorf("an oversized datagram: %v, want ErrLong", err)
	}
}

func TestDeriveKey(t *testing.T) {
	if _, err := DeriveKey([]byte("short")); err == nil {
		t.Error("a 5-byte secret was accepted")
	}
	a, b := testKey(t, "0123456789abcdef0123456789abcdef"), testKey(t, "0123456789abcdef0123456789abcdeF")
	if a == b {
		t.Error("different secrets gave the same key")
	}
	if a != testKey(t, "0123456789abcdef0123456789abcdef") {
		t.Error("the same secret gave different keys")
	}
}

func TestTableAcceptAndLookup(t *testing.T) {
	tb := NewTable(1, []netip.Addr{s1, s2}, Silence)
	if err := tb.Accept(s2, msg(2, 1, t0, entry(1, client)), t0); err != nil {
		t.Fatal(err)
	}
	f, ok := tb.Lookup(client, 0, t0.Add(time.Second))
	if !ok || f.Member != s2 || f.Peer[0] != 1 || !f.Handshake.Equal(t0.Add(-3*time.Second)) {
		t.Fatalf("Lookup = %+v, %v", f, ok)
	}
	if f, ok := tb.Lookup(netip.MustParseAddrPort("198.51.100.1:1"), 0xdeadbeef, t0); !ok || f.Peer[0] != 1 {
		t.Errorf("Lookup by index = %+v, %v", f, ok)
	}
	if _, ok := tb.Lookup(netip.MustParseAddrPort("198.51.100.1:1"), 0, t0); ok {
		t.Error("Lookup of an unknown endpoint found something")
	}
	// Entries expire with the activity they report.
	if _, ok := tb.Lookup(client, 0, t0.Add(Expire+time.Second)); ok {
		t.Error("an entry outlived Expire")
	}
	ms := tb.Members(t0.Add(time.Second))
	want := []MemberStatus{
		{Address: "10.0.5.1", State: "unknown", Silent: true},
		{Address: "10.0.7.1", State: "announced", Heard: t0, Peers: 1},
	}
	if diff := cmp.Diff(want, ms); diff != "" {
		t.Errorf("Members (-want +got):\n%s", diff)
	}
	if ms := tb.Members(t0.Add(Silence + time.Second)); !ms[1].Silent || ms[1].State != "unknown" {
		t.Errorf("a member unheard for longer than Silence: %+v", ms[1])
	}
}

// A forged, replayed, stale or foreign message changes nothing.
func TestTableRefusals(t *testing.T) {
	tb := NewTable(1, []netip.Addr{s1, s2}, Silence)
	good := msg(2, 5, t0, entry(1, client))
	if err := tb.Accept(s2, good, t0); err != nil {
		t.Fatal(err)
	}
	evil := netip.MustParseAddrPort("198.51.100.66:6666")
	for _, c := range []struct {
		name string
		from netip.Addr
		m    Message
		want error
	}{
		{"not a member", netip.MustParseAddr("10.0.9.9"), msg(3, 1, t0, entry(1, evil)), ErrNotMember},
		{"our own", s1, msg(1, 1, t0, entry(1, evil)), ErrSelf},
		{"replayed", s2, msg(2, 5, t0, entry(1, evil)), ErrReplay},
		{"older sequence", s2, msg(2, 4, t0.Add(time.Second), entry(1, evil)), ErrReplay},
		{"old sender id", s2, msg(9, 1, t0.Add(-time.Second), entry(1, evil)), ErrStale},
		{"from the future", s2, msg(2, 6, t0.Add(MaxSkew+time.Second), entry(1, evil)), ErrClock},
		{"from the past", s2, msg(2, 6, t0.Add(-MaxSkew-time.Second), entry(1, evil)), ErrClock},
	} {
		if err := tb.Accept(c.from, c.m, t0); !errors.Is(err, c.want) {
			t.Errorf("%s: Accept = %v, want %v", c.name, err, c.want)
		}
	}
	if _, ok := tb.Lookup(evil, 0, t0); ok {
		t.Error("a refused message's endpoint is in the table")
	}
	if f, ok := tb.Lookup(client, 0, t0); !ok || f.Member != s2 {
		t.Errorf("the good entry is gone: %+v, %v", f, ok)
	}
	if ms := tb.Members(t0); ms[1].Refused != 5 || ms[1].LastRefusal == "" {
		t.Errorf("refusals of s2 = %d (%q), want 5", ms[1].Refused, ms[1].LastRefusal)
	}
	// A restarted member (new id, newer time) replaces its old table.
	if err := tb.Accept(s2, msg(9, 1, t0.Add(time.Second)), t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.Lookup(client, 0, t0.Add(time.Second)); ok {
		t.Error("a restarted member's old entries are still there")
	}
}

func TestTableParts(t *testing.T) {
	tb := NewTable(1, []netip.Addr{s2}, Silence)
	a := netip.MustParseAddrPort("203.0.113.1:1")
	b := netip.MustParseAddrPort("203.0.113.2:2")
	m0 := Message{Sender: 2, Seq: 1, Time: t0, Part: 0, Parts: 2, Peers: []Entry{entry(1, a)}}
	m1 := Message{Sender: 2, Seq: 2, Time: t0, Part: 1, Parts: 2, Peers: []Entry{entry(2, b)}}
	for _, m := range []Message{m0, m1} {
		if err := tb.Accept(s2, m, t0); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := tb.Lookup(b, 0, t0); !ok {
		t.Fatal("part 2 not stored")
	}
	// The table shrinks to one part: part 2's entries go.
	if err := tb.Accept(s2, Message{Sender: 2, Seq: 3, Time: t0, Part: 0, Parts: 1, Peers: []Entry{entry(1, a)}}, t0); err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.Lookup(b, 0, t0); ok {
		t.Error("an entry of a part no longer sent is still there")
	}
}

// Two nodes on loopback see each other's tables; a third with another
// key is refused and changes nothing.
func TestNodesShareTables(t *testing.T) {
	a, b, c := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")
	probe, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).Port
	probe.Close()
	k := testKey(t, "0123456789abcdef0123456789abcdef")
	members := []netip.Addr{a, b}
	na, err := Listen(a, port, members, k, nil)
	if err != nil {
		t.Skipf("loopback: %v", err)
	}
	nb, err := Listen(b, port, members, k, nil)
	if err != nil {
		t.Skipf("loopback: %v", err)
	}
	nc, err := Listen(c, port, members, testKey(t, "an outsider's secret of 32 bytes"), nil)
	if err != nil {
		t.Skipf("loopback: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 3)
	for _, x := range []struct {
		n *Node
		s Snapshot
	}{
		{na, Snapshot{State: Announced, Peers: []Entry{entry(1, client)}}},
		{nb, Snapshot{State: Drained}},
		{nc, Snapshot{State: Announced, Peers: []Entry{entry(1, netip.MustParseAddrPort("198.51.100.66:6666"))}}},
	} {
		go func() { x.n.Run(ctx, func() Snapshot { return x.s }); done <- struct{}{} }()
	}
	defer func() {
		cancel()
		for range 3 {
			<-done
		}
	}()
	deadline := time.Now().Add(3 * time.Second)
	for {
		var found bool
		var ms []MemberStatus
		nb.With(func(t *Table) {
			_, found = t.Lookup(client, 0, time.Now())
			ms = t.Members(time.Now())
		})
		if found && ms[0].State == "announced" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b never learned a's table: %+v", ms)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var st []MemberStatus
	na.With(func(t *Table) { st = t.Members(time.Now()) })
	if st[1].State != "drained" {
		t.Errorf("a's view of b: %+v, want drained", st[1])
	}
	// c sends to a and b with the wrong key, and is no member either.
	var outsider bool
	nb.With(func(tb *Table) { _, outsider = tb.Lookup(netip.MustParseAddrPort("198.51.100.66:6666"), 0, time.Now()) })
	if outsider {
		t.Error("an outsider's entry was accepted")
	}
	if s := nb.Stats(); s.Dropped == 0 {
		t.Errorf("b dropped nothing from the outsider: %+v", s)
	}
}
