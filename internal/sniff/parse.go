package sniff

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/net/bpf"
)

// WireGuard message types (the first byte of the UDP payload).
const (
	Initiation = 1
	Response   = 2
	Transport  = 4
)

// Packet is one WireGuard message as seen on the wire.
type Packet struct {
	Type uint8
	// Outgoing: sent by this host (from the listen port), else received.
	Outgoing bool
	// Remote is the other end: the destination of an outgoing packet,
	// the source of a received one.
	Remote netip.AddrPort
	// Sender is the sender index of an initiation or response.
	Sender uint32
	// Receiver is the receiver index of a response or transport packet.
	Receiver uint32
}

// Parse reads a WireGuard message from an IP packet (network header
// first, as an AF_PACKET SOCK_DGRAM socket returns it) to or from port.
// It reports false for anything else: other ports or protocols,
// fragments, IPv6 extension headers, short or unknown messages.
func Parse(b []byte, port uint16, outgoing bool) (Packet, bool) {
	if len(b) < 1 {
		return Packet{}, false
	}
	var src, dst netip.Addr
	var udp []byte
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return Packet{}, false
		}
		ihl := int(b[0]&0xf) * 4
		if ihl < 20 || len(b) < ihl+8 || b[9] != 17 || binary.BigEndian.Uint16(b[6:])&0x3fff != 0 {
			return Packet{}, false
		}
		src, dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		udp = b[ihl:]
	case 6:
		if len(b) < 48 || b[6] != 17 {
			return Packet{}, false
		}
		src, dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		udp = b[40:]
	default:
		return Packet{}, false
	}
	sport, dport := binary.BigEndian.Uint16(udp[0:]), binary.BigEndian.Uint16(udp[2:])
	p := Packet{Outgoing: outgoing}
	switch {
	case outgoing && sport == port:
		p.Remote = netip.AddrPortFrom(dst, dport)
	case !outgoing && dport == port:
		p.Remote = netip.AddrPortFrom(src, sport)
	default:
		return Packet{}, false
	}
	wg := udp[8:]
	if len(wg) < 12 || wg[1] != 0 || wg[2] != 0 || wg[3] != 0 {
		return Packet{}, false
	}
	p.Type = wg[0]
	switch p.Type {
	case Initiation:
		p.Sender = binary.LittleEndian.Uint32(wg[4:])
	case Response:
		p.Sender = binary.LittleEndian.Uint32(wg[4:])
		p.Receiver = binary.LittleEndian.Uint32(wg[8:])
	case Transport:
		p.Receiver = binary.LittleEndian.Uint32(wg[4:])
	default:
		return Packet{}, false
	}
	return p, true
}

// snapLen is what the filter keeps of a packet: enough for the largest
// IPv4 header, UDP and the message's first 12 bytes.
const snapLen = 60 + 8 + 12

// MaxKnown bounds the indexes the filter drops in the kernel; more are
// checked in user space.
const MaxKnown = 1000

// Filter is the socket filter: it passes initiations and responses to or
// from port, and transport packets to port whose receiver index is not in
// known (sessions this server made: their packets, the bulk of the
// traffic, never wake wgbird). Everything else is dropped in the kernel.
// It expects the network header first (SOCK_DGRAM).
func Filter(port uint16, known []uint32) ([]bpf.RawInstruction, error) {
	if len(known) > MaxKnown {
		known = known[:MaxKnown]
	}
	p := uint32(port)
	prog := []bpf.Instruction{
		/* 0 */ bpf.LoadAbsolute{Off: 0, Size: 1},
		/* 1 */ bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4},
		/* 2 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 4, SkipTrue: 1},
		/* 3 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipTrue: 6, SkipFalse: 18}, // v6 at 10, drop at 22
		// IPv4: UDP, not a fragment; X = header length.
		/* 4 */ bpf.LoadAbsolute{Off: 9, Size: 1},
		/* 5 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 17, SkipFalse: 16},
		/* 6 */ bpf.LoadAbsolute{Off: 6, Size: 2},
		/* 7 */ bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x3fff, SkipTrue: 14},
		/* 8 */ bpf.LoadMemShift{Off: 0},
		/* 9 */ bpf.Jump{Skip: 3},
		// IPv6: UDP right after the fixed header.
		/* 10 */ bpf.LoadAbsolute{Off: 6, Size: 1},
		/* 11 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 17, SkipFalse: 10},
		/* 12 */ bpf.LoadConstant{Dst: bpf.RegX, Val: 40},
		// The message type and its three zero bytes.
		/* 13 */ bpf.LoadIndirect{Off: 8, Size: 4},
		/* 14 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: Transport << 24, SkipTrue: 8}, // transport at 23
		/* 15 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: Initiation << 24, SkipTrue: 1},
		/* 16 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: Response << 24, SkipFalse: 5},
		// A handshake message from or to the port.
		/* 17 */ bpf.LoadIndirect{Off: 0, Size: 2},
		/* 18 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: p, SkipTrue: 2},
		/* 19 */ bpf.LoadIndirect{Off: 2, Size: 2},
		/* 20 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: p, SkipFalse: 1},
		/* 21 */ bpf.RetConstant{Val: snapLen},
		/* 22 */ bpf.RetConstant{Val: 0},
		// A transport packet to the port, for a session not known.
		/* 23 */ bpf.LoadIndirect{Off: 2, Size: 2},
		/* 24 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: p, SkipFalse: 254}, // re-pointed below
		/* 25 */ bpf.LoadIndirect{Off: 12, Size: 4},
	}
	// Known indexes in blocks, each ending in a drop of its own, so that
	// no jump is longer than BPF's 255.
	const block = 200
	var drops []int // positions of jumps to the next drop
	for start := 0; start < len(known); start += block {
		end := min(start+block, len(known))
		for j, k := range known[start:end] {
			// Little endian on the wire; BPF loads big endian.
			var le [4]byte
			binary.LittleEndian.PutUint32(le[:], k)
			prog = append(prog, bpf.JumpIf{Cond: bpf.JumpEqual, Val: binary.BigEndian.Uint32(le[:]), SkipTrue: uint8(end - start - j)})
		}
		prog = append(prog, bpf.Jump{Skip: 1}, bpf.RetConstant{Val: 0})
		drops = append(drops, len(prog)-1)
	}
	prog = append(prog, bpf.RetConstant{Val: snapLen}, bpf.RetConstant{Val: 0})
	// Not to the port: to the final drop, or the first block's if nearer.
	target := len(prog) - 1
	if len(drops) > 0 {
		target = drops[0]
	}
	if d := target - 24 - 1; d <= 255 {
		prog[24] = bpf.JumpIf{Cond: bpf.JumpEqual, Val: p, SkipFalse: uint8(d)}
	} else {
		// Unreachable with blocks of 200: keep the program valid anyway.
		prog[24] = bpf.JumpIf{Cond: bpf.JumpEqual, Val: p}
	}
	return bpf.Assemble(prog)
}
