package sniff

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"
)

const port = 51820

// ipv4 builds an IPv4/UDP packet carrying a WireGuard message header.
func ipv4(src, dst netip.AddrPort, typ uint8, a, b uint32) []byte {
	p := make([]byte, 20+8+32)
	p[0] = 0x45
	p[9] = 17
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(p[12:], s4[:])
	copy(p[16:], d4[:])
	binary.BigEndian.PutUint16(p[20:], src.Port())
	binary.BigEndian.PutUint16(p[22:], dst.Port())
	p[28] = typ
	binary.LittleEndian.PutUint32(p[32:], a)
	binary.LittleEndian.PutUint32(p[36:], b)
	return p
}

func ipv6(src, dst netip.AddrPort, typ uint8, a, b uint32) []byte {
	p := make([]byte, 40+8+32)
	p[0] = 0x60
	p[6] = 17
	s, d := src.Addr().As16(), dst.Addr().As16()
	copy(p[8:], s[:])
	copy(p[24:], d[:])
	binary.BigEndian.PutUint16(p[40:], src.Port())
	binary.BigEndian.PutUint16(p[42:], dst.Port())
	p[48] = typ
	binary.LittleEndian.PutUint32(p[52:], a)
	binary.LittleEndian.PutUint32(p[56:], b)
	return p
}

var (
	vip    = netip.MustParseAddrPort("192.168.20.1:51820")
	client = netip.MustParseAddrPort("203.0.113.9:40000")
	vip6   = netip.MustParseAddrPort("[fd00::1]:51820")
	cl6    = netip.MustParseAddrPort("[2001:db8::9]:40000")
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		name     string
		b        []byte
		outgoing bool
		want     Packet
		ok       bool
	}{
		{"transport in", ipv4(client, vip, Transport, 0x11223344, 0), false, Packet{Type: Transport, Remote: client, Receiver: 0x11223344}, true},
		{"response out", ipv4(vip, client, Response, 7, 9), true, Packet{Type: Response, Outgoing: true, Remote: client, Sender: 7, Receiver: 9}, true},
		{"initiation out", ipv4(vip, client, Initiation, 5, 0), true, Packet{Type: Initiation, Outgoing: true, Remote: client, Sender: 5}, true},
		{"v6 transport in", ipv6(cl6, vip6, Transport, 42, 0), false, Packet{Type: Transport, Remote: cl6, Receiver: 42}, true},
		{"other port", ipv4(client, netip.MustParseAddrPort("192.168.20.1:53"), Transport, 1, 0), false, Packet{}, false},
		{"received from the port, as if sent", ipv4(vip, client, Transport, 1, 0), false, Packet{}, false},
		{"cookie reply", ipv4(client, vip, 3, 1, 0), false, Packet{}, false},
		{"short", ipv4(client, vip, Transport, 1, 0)[:30], false, Packet{}, false},
		{"empty", nil, false, Packet{}, false},
	} {
		got, ok := Parse(c.b, port, c.outgoing)
		if ok != c.ok || got != c.want {
			t.Errorf("%s: Parse = %+v, %v; want %+v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
	frag := ipv4(client, vip, Transport, 1, 0)
	frag[6] = 0x20 // more fragments
	if _, ok := Parse(frag, port, false); ok {
		t.Error("a fragment parsed")
	}
}

func run(t *testing.T, prog []bpf.RawInstruction, pkt []byte) int {
	t.Helper()
	ins, ok := bpf.Disassemble(prog)
	if !ok {
		t.Fatal("filter does not disassemble")
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatalf("filter rejected by the BPF VM: %v", err)
	}
	n, err := vm.Run(pkt)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestFilter(t *testing.T) {
	known := []uint32{0x11223344, 7}
	prog, err := Filter(port, known)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		pkt  []byte
		pass bool
	}{
		{"transport for a known session", ipv4(client, vip, Transport, 0x11223344, 0), false},
		{"transport for another known one", ipv4(client, vip, Transport, 7, 0), false},
		{"transport for an unknown session", ipv4(client, vip, Transport, 0x55667788, 0), true},
		{"v6 transport for an unknown session", ipv6(cl6, vip6, Transport, 99, 0), true},
		{"v6 transport for a known session", ipv6(cl6, vip6, Transport, 7, 0), false},
		{"our own transport out", ipv4(vip, client, Transport, 0x55667788, 0), false},
		{"initiation in", ipv4(client, vip, Initiation, 1, 0), true},
		{"response out", ipv4(vip, client, Response, 1, 2), true},
		{"v6 response out", ipv6(vip6, cl6, Response, 1, 2), true},
		{"other port", ipv4(client, netip.MustParseAddrPort("192.168.20.1:53"), Transport, 1, 0), false},
		{"cookie", ipv4(client, vip, 3, 1, 0), false},
		{"not IP", []byte{0x00, 1, 2, 3}, false},
	} {
		if got := run(t, prog, c.pkt) > 0; got != c.pass {
			t.Errorf("%s: passes = %v, want %v", c.name, got, c.pass)
		}
	}
}

// Many known indexes span several blocks; every jump stays valid.
func TestFilterManyKnown(t *testing.T) {
	var known []uint32
	for i := range MaxKnown {
		known = append(known, uint32(i+1)*7919)
	}
	prog, err := Filter(port, known)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []uint32{known[0], known[199], known[200], known[MaxKnown-1]} {
		if run(t, prog, ipv4(client, vip, Transport, k, 0)) != 0 {
			t.Errorf("known index %d passed", k)
		}
	}
	if run(t, prog, ipv4(client, vip, Transport, 3, 0)) == 0 {
		t.Error("an unknown index was dropped")
	}
	if run(t, prog, ipv4(client, netip.MustParseAddrPort("192.168.20.1:53"), Transport, 3, 0)) != 0 {
		t.Error("another port passed")
	}
}

func FuzzParsePacket(f *testing.F) {
	f.Add(ipv4(client, vip, Transport, 1, 0), false)
	f.Add(ipv6(vip6, cl6, Response, 1, 2), true)
	f.Fuzz(func(t *testing.T, b []byte, out bool) {
		p, ok := Parse(b, port, out)
		if ok && (p.Type != Initiation && p.Type != Response && p.Type != Transport || !p.Remote.IsValid()) {
			t.Fatalf("parsed nonsense: %+v", p)
		}
	})
}
