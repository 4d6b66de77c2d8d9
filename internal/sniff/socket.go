package sniff

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Socket is an AF_PACKET socket on every interface of the network
// namespace it was opened in, filtered by Filter. It is non-blocking and
// waits in Go's netpoller: an idle socket costs no wake-up and no thread.
type Socket struct {
	f    *os.File
	rc   syscall.RawConn
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
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("opening a packet socket: %w", err)
	}
	// The filter and the bind happen before the netpoller owns the fd.
	raw, err := Filter(port, nil)
	if err == nil {
		err = attach(fd, raw)
	}
	if err == nil {
		if err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL)}); err != nil {
			err = fmt.Errorf("binding the packet socket: %w", err)
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	s := &Socket{f: os.NewFile(uintptr(fd), "packet socket"), port: port, skip: map[int]bool{}, buf: make([]byte, 2048)}
	if s.rc, err = s.f.SyscallConn(); err != nil {
		s.f.Close()
		return nil, fmt.Errorf("opening a packet socket: %w", err)
	}
	for _, name := range skip {
		if ifc, err := net.InterfaceByName(name); err == nil {
			s.skip[ifc.Index] = true
		}
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
	var aerr error
	if err := s.rc.Control(func(fd uintptr) { aerr = attach(int(fd), raw) }); err != nil {
		return fmt.Errorf("attaching the packet filter: %w", err)
	}
	return aerr
}

func attach(fd int, raw []bpf.RawInstruction) error {
	prog := unix.SockFprog{Len: uint16(len(raw)), Filter: (*unix.SockFilter)(unsafe.Pointer(&raw[0]))}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		return fmt.Errorf("attaching the packet filter: %w", err)
	}
	return nil
}

// ErrTimeout is returned by Read when its deadline passed first.
var ErrTimeout = errors.New("no packet")

// Read returns the next WireGuard packet, ErrTimeout when the deadline
// set by SetDeadline passed (or Run was told to stop), or the socket's
// error. Without a deadline it waits as long as it takes.
func (s *Socket) Read() (Packet, error) {
	for {
		var (
			n    int
			from unix.Sockaddr
			err  error
		)
		rerr := s.rc.Read(func(fd uintptr) bool {
			n, from, err = unix.Recvfrom(int(fd), s.buf, 0)
			return !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR)
		})
		if errors.Is(rerr, os.ErrDeadlineExceeded) {
			return Packet{}, ErrTimeout
		}
		if rerr != nil {
			return Packet{}, fmt.Errorf("reading the packet socket: %w", rerr)
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

// SetDeadline bounds the Reads in progress and to come (zero: none).
func (s *Socket) SetDeadline(t time.Time) error { return s.f.SetReadDeadline(t) }

// Close closes the socket; a Read in progress returns its error.
func (s *Socket) Close() error { return s.f.Close() }

// Run reads packets and hands each to f until done is closed (at once:
// the read in progress is cut short by a deadline) or the socket fails.
// Close the socket after Run has returned.
func (s *Socket) Run(done <-chan struct{}, f func(Packet)) error {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-done:
			_ = s.SetDeadline(time.Unix(1, 0))
		case <-stop:
		}
	}()
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
