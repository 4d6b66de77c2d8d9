package wireguard

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// DefaultTimeout bounds a read whose context has no deadline.
const DefaultTimeout = time.Second

// SocketDir is where wireguard-go listens for UAPI connections, one socket
// NAME.sock per device; wgctrl and wg(8) look there too.
const SocketDir = "/var/run/wireguard"

// flightTimeout bounds one UAPI exchange with wireguard-go, whoever waits
// for it: a hung wireguard-go holds one connection that long, then the
// next caller dials afresh. Callers leave at their own, shorter deadlines.
const flightTimeout = 30 * time.Second

// bufSize is the read buffer of a UAPI answer: a read of 10,000 peers
// (about 2.5 MB of text) takes under a hundred read calls.
const bufSize = 32 << 10

// ErrClosed is returned by a Reader's reads after Close.
var ErrClosed = errors.New("wireguard reader closed")

// TimeoutError is returned by a Reader's reads when the device did not
// answer in time. It unwraps to the context's error, usually
// context.DeadlineExceeded. The read itself goes on in the background until
// the device answers, its process dies or 30 s pass, and later callers
// share it.
type TimeoutError struct {
	Device string
	// After is how long the caller allowed the device to answer: its
	// context's deadline measured from the start of the call.
	After time.Duration
	// Pending is how long the read the caller shared had been waiting for
	// an answer when the caller gave up: at least After when the caller
	// started the read, more when it joined one already in flight.
	Pending time.Duration
	Err     error
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("reading wireguard device %q: no answer within %s: %v", e.Device, roundHuman(e.After), e.Err)
}

func (e *TimeoutError) Unwrap() error { return e.Err }

// client is the part of *wgctrl.Client the Reader uses.
type client interface {
	Device(name string) (*wgtypes.Device, error)
	Close() error
}

var _ client = (*wgctrl.Client)(nil)

// Reader reads WireGuard devices with a deadline. See the package
// documentation for which path runs when.
//
// It keeps at most one read per device in flight: a caller that finds a
// read of its device in flight shares that read's answer when the read
// answers its question (a wgctrl read answers every one, a summary a
// liveness one), and otherwise waits for it to end before asking
// its own. A hung device thus holds one connection and one goroutine;
// reads of other devices are not affected.
//
// Every caller leaves at its own deadline, and the device must answer
// within the caller's allowance (its deadline measured from its call)
// counted from when the shared read asked it: a read that has been in
// flight longer than that already says the device did not answer in time,
// and the caller fails at once with a *TimeoutError. So sharing a read
// never turns a device that is too slow for a caller into one that
// answered in time, and a monitoring script reading a device concurrently
// with the service loop never changes the loop's result.
//
// A Reader is safe for concurrent use.
type Reader struct {
	c   client // kernel WireGuard
	dir string // UAPI sockets

	bufs sync.Pool  // *bufio.Reader of bufSize
	keys publicKeys // the devices' public keys, derived once

	mu      sync.Mutex
	flights map[string]*flight // device name -> its read in flight
	// live holds each wireguard-go's UAPI connection between requests:
	// its UAPI serves one request after another on a connection, so a
	// liveness check or a read costs a write and a read, not a socket, a
	// connect and a close. The device's flight (one at a time) takes it
	// out; any error closes it and the next request dials anew.
	live map[string]net.Conn
	// peerHint is the peer count of each device's last Peers read: the
	// next one allocates its list once instead of growing it.
	peerHint map[string]int
	closed   bool
}

// op is what a flight asks the device.
type op int

const (
	opAlive   op = iota // does it answer at all
	opSummary           // Summary
	opPeers             // *Peers
	opWgctrl            // *wgtypes.Device, for Reader.Device
)

// flight is one read of a device in progress, shared by every caller
// whose question it answers until it returns.
type flight struct {
	op     op
	ignore []wgtypes.Key
	start  time.Time
	end    time.Time     // when the device answered
	done   chan struct{} // closed once the results are set

	sum   Summary
	peers *Peers          // opPeers
	wdev  *wgtypes.Device // opWgctrl, and opSummary of a kernel device
	err   error
}

// answers reports whether f's answer also answers a read of o with ignore.
func (f *flight) answers(o op, ignore []wgtypes.Key) bool {
	switch f.op {
	case opWgctrl:
		return true
	case opSummary:
		return o == opAlive || o == opSummary && slices.Equal(f.ignore, ignore)
	case opPeers:
		return o == opAlive || o == opPeers
	}
	return o == opAlive
}

// NewReader opens a wgctrl client for kernel WireGuard. On a machine
// without the WireGuard kernel module wgctrl uses only its userspace
// backend, which the Reader needs for nothing but Device.
func NewReader() (*Reader, error) {
	c, err := openWgctrl()
	if err != nil {
		return nil, fmt.Errorf("opening wgctrl client: %w", err)
	}
	return newReader(c, SocketDir), nil
}

func newReader(c client, dir string) *Reader {
	r := &Reader{c: c, dir: dir, flights: make(map[string]*flight), live: make(map[string]net.Conn), peerHint: make(map[string]int)}
	r.bufs.New = func() any { return bufio.NewReaderSize(nil, bufSize) }
	return r
}

// Alive reports whether the device answers at all: for wireguard-go an
// empty UAPI set (which changes nothing and costs it no more than taking a
// lock), answered with errno=0; a full read in flight answers it too. A
// device without a UAPI socket is kernel WireGuard, which cannot hang as a
// process can, or gone, which the link check sees: Alive returns nil
// without I/O. Errors are those of Summary.
func (r *Reader) Alive(ctx context.Context, name string) error {
	_, err := r.do(ctx, name, opAlive, nil)
	return err
}

// Summary reads what the checks use of the device, leaving the peers in
// ignore out of Counted and NewestCounted. It returns by the context's
// deadline (or after DefaultTimeout if the context has none), or sooner
// when it joins a read in flight that has been waiting longer than that
// allowance, with a *TimeoutError. A missing device yields an error
// matching os.ErrNotExist; a wireguard-go that was killed leaves a stale
// socket and yields one matching syscall.ECONNREFUSED.
func (r *Reader) Summary(ctx context.Context, name string, ignore ...wgtypes.Key) (Summary, error) {
	f, err := r.do(ctx, name, opSummary, ignore)
	if err != nil {
		return Summary{}, err
	}
	if f.wdev != nil && !(f.op == opSummary && slices.Equal(f.ignore, ignore)) {
		return FromWgctrl(f.wdev, ignore), nil
	}
	return f.sum, nil
}

// Peers reads the device's listen port and peers as Peers: over UAPI for
// wireguard-go, parsed as the answer streams in (about 100 bytes a peer
// kept, and one small allocation a peer for its endpoint), through wgctrl
// for kernel WireGuard. Deadlines and errors are those of Summary. The returned
// Peers may be shared with other callers and must not be modified.
func (r *Reader) Peers(ctx context.Context, name string) (*Peers, error) {
	f, err := r.do(ctx, name, opPeers, nil)
	if err != nil {
		return nil, err
	}
	if f.op == opWgctrl {
		return PeersFromWgctrl(f.wdev), nil
	}
	return f.peers, nil
}

// Device reads the device through wgctrl, with its full structures.
// Deadlines and errors are those of Summary. The returned device may be
// shared with other callers and must not be modified.
func (r *Reader) Device(ctx context.Context, name string) (*wgtypes.Device, error) {
	f, err := r.do(ctx, name, opWgctrl, nil)
	if err != nil {
		return nil, err
	}
	return f.wdev, nil
}

// do runs or joins a read of o and returns its flight, or the error.
func (r *Reader) do(ctx context.Context, name string, o op, ignore []wgtypes.Key) (*flight, error) {
	start := time.Now()
	deadline, hasDeadline := ctx.Deadline()
	if !hasDeadline {
		deadline = start.Add(DefaultTimeout)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("reading wireguard device %q: %w", name, err)
	}
	allowance := deadline.Sub(start)
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return nil, fmt.Errorf("reading wireguard device %q: %w", name, ErrClosed)
		}
		f, joined := r.flights[name]
		if !joined {
			f = &flight{op: o, ignore: ignore, start: time.Now(), done: make(chan struct{})}
			r.flights[name] = f
			go r.run(name, f)
		}
		r.mu.Unlock()

		// The device must answer within the allowance of being asked, and
		// the caller leaves at its deadline: when this call asked the
		// device under a deadline of its own, the context says when;
		// otherwise a timer does.
		limit := deadline
		var expired <-chan time.Time
		var timer *time.Timer
		if joined || !hasDeadline {
			if l := f.start.Add(allowance); l.Before(limit) {
				limit = l
			}
			timer = time.NewTimer(time.Until(limit))
			expired = timer.C
		}
		var err error
		select {
		case <-f.done:
		case <-expired:
			err = context.DeadlineExceeded
		case <-ctx.Done():
			err = ctx.Err()
		}
		if timer != nil {
			timer.Stop()
		}
		// The answer's time decides, not which ready case select picked: a
		// caller scheduled late finds the answer and its deadline both
		// ready, and a device that answered after the limit must not pass
		// by chance (nor one that answered before it fail).
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			select {
			case <-f.done:
				err = nil
				if f.end.After(limit) {
					err = context.DeadlineExceeded
				}
			default:
			}
		}
		switch {
		case err != nil:
			return nil, &TimeoutError{Device: name, After: allowance, Pending: time.Since(f.start), Err: err}
		case f.err != nil:
			return nil, fmt.Errorf("reading wireguard device %q: %w", name, f.err)
		case f.answers(o, ignore):
			return f, nil
		}
		// The device answered a lesser question: now ask ours.
	}
}

// run reads the device of f and hands the answer to everyone waiting.
func (r *Reader) run(name string, f *flight) {
	switch f.op {
	case opAlive:
		f.err = r.alive(name)
	case opSummary:
		f.sum, f.wdev, f.err = r.read(name, f.ignore)
	case opPeers:
		f.peers, f.err = r.readPeers(name)
	case opWgctrl:
		f.wdev, f.err = r.c.Device(name)
	}
	f.end = time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.flights[name] == f {
		delete(r.flights, name)
	}
	close(f.done)
}

// errKernel says a device has no UAPI socket: kernel WireGuard, or none.
var errKernel = errors.New("no UAPI socket")

// dial connects to wireguard-go's UAPI socket of name; errKernel when
// there is none.
func (r *Reader) dial(name string, deadline time.Time) (net.Conn, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return nil, fmt.Errorf("bad interface name %q: %w", name, fs.ErrNotExist)
	}
	d := net.Dialer{Deadline: deadline}
	conn, err := d.Dial("unix", filepath.Join(r.dir, name+".sock"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errKernel
	}
	return conn, err
}

// exchange sends one UAPI request to wireguard-go's socket of name and
// parses the answer with parse, within flightTimeout: on the connection
// kept from the device's last request when there is one, else (or when
// that one turns out closed: wireguard-go restarted) on a new one, which
// it keeps for the next. It returns errKernel when there is no socket.
func (r *Reader) exchange(name, request string, parse func(*bufio.Reader) error) error {
	r.mu.Lock()
	conn := r.live[name]
	delete(r.live, name)
	r.mu.Unlock()
	if conn != nil {
		err := r.ask(conn, request, parse)
		if err == nil {
			r.keepLive(name, conn)
			return nil
		}
		conn.Close()
		if !connClosed(err) {
			return err
		}
	}
	conn, err := r.dial(name, time.Now().Add(flightTimeout))
	if err != nil {
		return err
	}
	if err := r.ask(conn, request, parse); err != nil {
		conn.Close()
		return err
	}
	r.keepLive(name, conn)
	return nil
}

// connClosed reports whether err says a kept connection was closed by
// the other end before or while answering, which a new one may not be.
func connClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// ask sends request on conn and parses the answer, within flightTimeout. An
// answer followed by more bytes than it holds leaves the connection out
// of step: that is an error, and the connection is not kept.
func (r *Reader) ask(conn net.Conn, request string, parse func(*bufio.Reader) error) error {
	if err := conn.SetDeadline(time.Now().Add(flightTimeout)); err != nil {
		return err
	}
	if _, err := io.WriteString(conn, request); err != nil {
		return fmt.Errorf("sending UAPI request: %w", err)
	}
	br := r.bufs.Get().(*bufio.Reader)
	br.Reset(conn)
	defer func() { br.Reset(nil); r.bufs.Put(br) }()
	if err := parse(br); err != nil {
		return err
	}
	if n := br.Buffered(); n > 0 {
		return fmt.Errorf("UAPI answer followed by %d more bytes", n)
	}
	return nil
}

// alive sends the empty set and reads its errno; a device without a
// socket is no error (see Alive).
func (r *Reader) alive(name string) error {
	err := r.exchange(name, "set=1\n\n", func(br *bufio.Reader) error {
		_, err := parseUAPI(br, nil)
		return err
	})
	if errors.Is(err, errKernel) {
		return nil
	}
	return err
}

// keepLive keeps conn for name's next request (closed with the Reader).
func (r *Reader) keepLive(name string, conn net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.live[name] != nil {
		conn.Close()
		return
	}
	r.live[name] = conn
}

// read reads the summary of name: over UAPI for wireguard-go, through
// wgctrl for kernel WireGuard, whose device it then returns too.
func (r *Reader) read(name string, ignore []wgtypes.Key) (Summary, *wgtypes.Device, error) {
	var s Summary
	wd, err := r.get(name, func(br *bufio.Reader) (err error) {
		s, err = parseUAPIKeys(br, ignore, &r.keys)
		return err
	})
	switch {
	case err != nil:
		return Summary{}, nil, err
	case wd != nil:
		return FromWgctrl(wd, ignore), wd, nil
	}
	s.Name = name
	return s, nil, nil
}

// readPeers reads the Peers of name: over UAPI for wireguard-go, through
// wgctrl for kernel WireGuard.
func (r *Reader) readPeers(name string) (*Peers, error) {
	r.mu.Lock()
	hint := r.peerHint[name]
	r.mu.Unlock()
	var ps *Peers
	wd, err := r.get(name, func(br *bufio.Reader) (err error) {
		ps, err = parseUAPIPeers(br, hint)
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case wd != nil:
		return PeersFromWgctrl(wd), nil
	}
	ps.Name = name
	r.mu.Lock()
	r.peerHint[name] = len(ps.Peers)
	r.mu.Unlock()
	return ps, nil
}

// get reads name with a UAPI "get" parsed by parse, or, for a device
// without a UAPI socket (kernel WireGuard), through wgctrl, whose device
// it returns (nil after a UAPI read).
func (r *Reader) get(name string, parse func(*bufio.Reader) error) (*wgtypes.Device, error) {
	err := r.exchange(name, "get=1\n\n", parse)
	if errors.Is(err, errKernel) {
		return r.c.Device(name)
	}
	return nil, err
}

// inFlightCount returns the number of reads still waiting for an answer.
func (r *Reader) inFlightCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.flights)
}

// Close releases the wgctrl client. Reads still in flight end when their
// devices answer or die, or at their 30 s bound; reads fail with ErrClosed
// afterwards.
func (r *Reader) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	for name, conn := range r.live {
		conn.Close()
		delete(r.live, name)
	}
	r.mu.Unlock()
	if err := r.c.Close(); err != nil {
		return fmt.Errorf("closing wgctrl client: %w", err)
	}
	return nil
}

// roundHuman rounds a duration for people: 1.2s, 250ms, 80ms. A wait
// measured from the start of a read to the deadline is a little shorter
// than the timeout the caller set (249.6ms for 250ms); the rounding hides
// that.
func roundHuman(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= 100*time.Millisecond:
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
