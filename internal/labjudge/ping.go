package labjudge

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The client as the judge: what the people behind the tunnel see. A
// Pinger pings through a client's tunnel at a fixed rate and keeps every
// echo's send and reply time; Outages turns them into the tunnel's
// outages.

// PingInterval is the client's ping rate when judging a failover.
const PingInterval = 100 * time.Millisecond

// LateReply is how long a reply may take and still count: WireGuard holds
// packets sent while it has no session and sends them once a handshake
// completes, so an echo sent during an outage can be answered seconds
// later. Such a reply says nothing about when the tunnel worked.
const LateReply = time.Second

// Echo is one ping through the tunnel.
type Echo struct {
	Seq   int
	Sent  time.Time
	Reply time.Time // zero: no reply (yet)
}

// Answered reports whether the echo was answered within LateReply.
func (e Echo) Answered() bool { return !e.Reply.IsZero() && e.Reply.Sub(e.Sent) <= LateReply }

// Pinger pings an address (the servers' tunnel address) from a client
// every interval.
type Pinger struct {
	client   string
	dst      netip.Addr
	interval time.Duration
	conn     *net.IPConn
	id       uint16

	mu     sync.Mutex
	echoes []Echo
	wake   chan struct{} // closed and replaced on every reply
	err    error

	quit    chan struct{} // stops the sender
	done    chan struct{} // stops the receiver
	sent    chan struct{} // closed when the sender is gone
	stopped sync.WaitGroup
	once    sync.Once
}

// StartPinger starts pinging dst from the network namespace ns every
// interval (PingInterval if 0); client names the pinging client in errors.
// Stop it when done.
func StartPinger(ns, client string, dst netip.Addr, interval time.Duration) (*Pinger, error) {
	if interval <= 0 {
		interval = PingInterval
	}
	c, err := icmpSocket(ns)
	if err != nil {
		return nil, err
	}
	p := &Pinger{
		client: client, dst: dst, interval: interval, conn: c,
		id:   uint16(os.Getpid()) ^ uint16(pingID.Add(1)*7919),
		wake: make(chan struct{}), done: make(chan struct{}), quit: make(chan struct{}), sent: make(chan struct{}),
	}
	p.stopped.Add(2)
	go p.send()
	go p.receive()
	return p, nil
}

func (p *Pinger) send() {
	defer p.stopped.Done()
	defer close(p.sent)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	dst := &net.IPAddr{IP: p.dst.AsSlice()}
	for seq := 0; ; seq++ {
		msg := echoRequest(p.id, uint16(seq))
		p.mu.Lock()
		p.echoes = append(p.echoes, Echo{Seq: seq, Sent: time.Now()})
		p.mu.Unlock()
		if _, err := p.conn.WriteToIP(msg, dst); err != nil {
			p.fail(fmt.Errorf("pinging through %s's tunnel: %w", p.client, err))
		}
		select {
		case <-p.quit:
			return
		case <-t.C:
		}
	}
}

func (p *Pinger) receive() {
	defer p.stopped.Done()
	buf := make([]byte, 1500)
	for {
		_ = p.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, from, err := p.conn.ReadFromIP(buf)
		at := time.Now()
		select {
		case <-p.done:
			return
		default:
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			p.fail(fmt.Errorf("reading %s's ping replies: %w", p.client, err))
			return
		}
		if src, ok := netip.AddrFromSlice(from.IP); !ok || src.Unmap() != p.dst {
			continue
		}
		id, seq, ok := parseEchoReply(buf[:n])
		if !ok || id != p.id {
			continue
		}
		p.mu.Lock()
		// Sequence numbers are 16 bits on the wire: match the newest echo
		// with these low bits.
		for i := len(p.echoes) - 1; i >= 0; i-- {
			if uint16(p.echoes[i].Seq) == seq {
				if p.echoes[i].Reply.IsZero() {
					p.echoes[i].Reply = at
				}
				break
			}
		}
		close(p.wake)
		p.wake = make(chan struct{})
		p.mu.Unlock()
	}
}

func (p *Pinger) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
}

// Stop stops pinging (replies in flight are waited for up to LateReply)
// and returns every echo.
func (p *Pinger) Stop() []Echo {
	p.once.Do(func() {
		close(p.quit)
		<-p.sent
		// Let the last echoes' replies arrive.
		time.Sleep(min(LateReply, 3*p.interval))
		close(p.done)
		p.stopped.Wait()
		p.conn.Close()
	})
	return p.Echoes()
}

// Err returns why pinging failed, nil while it works.
func (p *Pinger) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Echoes returns every echo so far, oldest first.
func (p *Pinger) Echoes() []Echo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Echo(nil), p.echoes...)
}

// WaitAnswered waits until an echo sent at or after since is answered and
// returns it.
func (p *Pinger) WaitAnswered(ctx context.Context, since time.Time) (Echo, error) {
	for {
		p.mu.Lock()
		wake := p.wake
		var got *Echo
		for i := range p.echoes {
			if e := p.echoes[i]; !e.Sent.Before(since) && e.Answered() {
				got = &e
				break
			}
		}
		p.mu.Unlock()
		if got != nil {
			return *got, nil
		}
		select {
		case <-ctx.Done():
			return Echo{}, fmt.Errorf("no reply through %s's tunnel since %s: %w", p.client, since.Format("15:04:05.000"), ctx.Err())
		case <-wake:
		case <-time.After(p.interval):
		}
	}
}

// Outage is a run of unanswered echoes: From is when the first of them
// was sent, To when the first answered echo after them was sent (zero if
// none was yet), Lost how many there were.
type Outage struct {
	From, To time.Time
	Lost     int
}

// Duration is how long the tunnel did not answer; 0 for no outage.
func (o Outage) Duration() time.Duration {
	if o.From.IsZero() || o.To.IsZero() {
		return 0
	}
	return o.To.Sub(o.From)
}

// Outages returns the runs of unanswered echoes among those sent in
// [from, to) (a zero to: up to the last answered echo). A run still open at
// the end has a zero To.
func Outages(echoes []Echo, from, to time.Time) []Outage {
	var out []Outage
	var cur *Outage
	for _, e := range echoes {
		if e.Sent.Before(from) || (!to.IsZero() && !e.Sent.Before(to)) {
			continue
		}
		if e.Answered() {
			if cur != nil {
				cur.To = e.Sent
				out = append(out, *cur)
				cur = nil
			}
			continue
		}
		if cur == nil {
			cur = &Outage{From: e.Sent}
		}
		cur.Lost++
	}
	if cur != nil {
		out = append(out, *cur)
	}
	return out
}

// LongestOutage returns the longest closed outage among echoes sent in
// [from, to), and the zero Outage if none; an outage still open at the end
// is returned as is (zero To) since it has no length yet.
func LongestOutage(echoes []Echo, from, to time.Time) Outage {
	var best Outage
	for _, o := range Outages(echoes, from, to) {
		if o.To.IsZero() {
			return o
		}
		if o.Duration() > best.Duration() {
			best = o
		}
	}
	return best
}

// echoRequest is an ICMP echo request with id and seq.
func echoRequest(id, seq uint16) []byte {
	msg := make([]byte, 8+16)
	msg[0] = 8 // echo request
	binary.BigEndian.PutUint16(msg[4:], id)
	binary.BigEndian.PutUint16(msg[6:], seq)
	copy(msg[8:], "wgbird-lab-ping.")
	binary.BigEndian.PutUint16(msg[2:], icmpChecksum(msg))
	return msg
}

// parseEchoReply returns the id and sequence number of an ICMP echo reply,
// with or without its IPv4 header (raw sockets deliver it).
func parseEchoReply(b []byte) (id, seq uint16, ok bool) {
	if len(b) >= 20 && b[0]>>4 == 4 {
		hl := int(b[0]&0x0f) * 4
		if hl > len(b) {
			return 0, 0, false
		}
		b = b[hl:]
	}
	if len(b) < 8 || b[0] != 0 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:]), true
}

// icmpSocket opens a raw ICMP socket inside namespace ns. The socket stays
// in that namespace for its whole life, whichever thread uses it.
func icmpSocket(ns string) (*net.IPConn, error) {
	fd := -1
	err := InNamedNS(ns, func() error {
		var err error
		fd, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, syscall.IPPROTO_ICMP)
		if err != nil {
			return fmt.Errorf("opening ICMP socket: %w", err)
		}
		return nil
	})
	if err != nil {
		if fd >= 0 {
			syscall.Close(fd)
		}
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "icmp")
	defer f.Close()
	c, err := net.FilePacketConn(f)
	if err != nil {
		return nil, fmt.Errorf("wrapping ICMP socket: %w", err)
	}
	ipc, ok := c.(*net.IPConn)
	if !ok {
		c.Close()
		return nil, errors.New("ICMP socket is not an IPConn")
	}
	return ipc, nil
}

var pingID atomic.Uint32

// Ping sends one ICMP echo request to dst from namespace ns and waits up
// to timeout for the reply; it returns the round-trip time.
func Ping(ns string, dst netip.Addr, timeout time.Duration) (time.Duration, error) {
	c, err := icmpSocket(ns)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	id := uint16(os.Getpid()) ^ uint16(pingID.Add(1)*7919)
	const seq = 1
	msg := echoRequest(id, seq)
	start := time.Now()
	if err := c.SetDeadline(start.Add(timeout)); err != nil {
		return 0, err
	}
	if _, err := c.WriteToIP(msg, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		return 0, fmt.Errorf("pinging %s: %w", dst, err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFromIP(buf)
		if err != nil {
			return 0, fmt.Errorf("pinging %s: %w", dst, err)
		}
		if src, ok := netip.AddrFromSlice(from.IP); !ok || src.Unmap() != dst {
			continue
		}
		if rid, rseq, ok := parseEchoReply(buf[:n]); ok && rid == id && rseq == seq {
			return time.Since(start), nil
		}
	}
}

// icmpChecksum is the Internet checksum (RFC 1071) of b.
func icmpChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
