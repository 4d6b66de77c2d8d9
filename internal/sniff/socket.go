package sniff

import (
	"errors"
	"fmt"
	"net"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Socket is an AF_PACKET socket on every interface of the network
// namespace it was opened in, filtered by Filter.
type Socket struct {
	fd   int
	port uint16
	skip map[int]bool
	buf  []byte
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Open opens the socket for port's WireGuard traffic in the network
// namespace of the calling thread. Packets on the interfaces named in
// skip (loopback, the WireGuard interface itself) are ignored. It needs
// CAP_NET_RAW.
func Open(port uint16, skip ...string) (*Socket, error) {
	// Protocol 0 receives nothing until bind, so no packet is queued
	// before the filter is attached.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening a packet socket: %w", err)
	}
	s := &Socket{fd: fd, port: port, skip: map[int]bool{}, buf: make([]byte, 2048)}
	for _, name := range skip {
		if ifc, err := net.InterfaceByName(name); err == nil {
			s.skip[ifc.Index] = true
		}
	}
	if err := s.SetKnown(nil); err != nil {
		s.Close()
		return nil, err
	}
	tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		s.Close()
		return nil, fmt.Errorf("setting the packet socket's timeout: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL)}); err != nil {
		s.Close()
		return nil, fmt.Errorf("binding the packet socket: %w", err)
	}
	return s, nil
}

// SetKnown replaces the filter: transport packets for these receiver
// indexes are dropped in the kernel from now on.
func (s *Socket) SetKnown(known []uint32) error {
	raw, err := Filter(s.port, known)
	if err != nil {
		return fmt.Errorf("assembling the packet filter: %w", err)
	}
	return attach(s.fd, raw)
}

func attach(fd int, raw []bpf.RawInstruction) error {
	prog := unix.SockFprog{Len: uint16(len(raw)), Filter: (*unix.SockFilter)(unsafe.Pointer(&raw[0]))}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		return fmt.Errorf("attaching the packet filter: %w", err)
	}
	return nil
}

// ErrTimeout is returned by Read when nothing came within its 200 ms.
var ErrTimeout = errors.New("no packet")

// Read returns the next WireGuard packet, ErrTimeout after 200 ms
// without one, or the socket's error.
func (s *Socket) Read() (Packet, error) {
	for {
		n, from, err := unix.Recvfrom(s.fd, s.buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			return Packet{}, ErrTimeout
		}
		if err != nil {
			return Packet{}, fmt.Errorf("reading the packet socket: %w", err)
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || s.skip[ll.Ifindex] {
			continue
		}
		if p, ok := Parse(s.buf[:n], s.port, ll.Pkttype == unix.PACKET_OUTGOING); ok {
			return p, nil
		}
	}
}

// Close closes the socket. Never call it while a Read is in progress
// (use Run).
func (s *Socket) Close() error { return unix.Close(s.fd) }

// Run reads packets and hands each to f until done is closed (within
// 200 ms) or the socket fails. Close the socket after Run has returned.
func (s *Socket) Run(done <-chan struct{}, f func(Packet)) error {
	for {
		select {
		case <-done:
			return nil
		default:
		}
		p, err := s.Read()
		switch {
		case errors.Is(err, ErrTimeout):
		case err != nil:
			return err
		default:
			f(p)
		}
	}
}
