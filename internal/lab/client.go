package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
)

// The client as the judge: what the people behind the tunnel see. A
// Pinger pings through a client's tunnel at a fixed rate and keeps every
// echo's send and reply time; ClientEndpoint reads the client's own
// endpoint for the server peer, which must stay the service address
// (Lab.Endpoint) through every failover.

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

// Pinger pings the servers' tunnel address from a client every interval.
type Pinger struct {
	client   string
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

// StartPinger starts pinging TunnelServer through the tunnel of the client
// called name every interval (PingInterval if 0). Stop it when done.
func (l *Lab) StartPinger(name string, interval time.Duration) (*Pinger, error) {
	if !l.isClient(name) {
		return nil, fmt.Errorf("unknown client %q", name)
	}
	if interval <= 0 {
		interval = PingInterval
	}
	c, err := icmpSocket(l.NS(name))
	if err != nil {
		return nil, err
	}
	p := &Pinger{
		client: name, interval: interval, conn: c,
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
	dst := &net.IPAddr{IP: TunnelServer.Addr().AsSlice()}
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
		if src, ok := netip.AddrFromSlice(from.IP); !ok || src.Unmap() != TunnelServer.Addr() {
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

// PingFrom pings TunnelServer once through the tunnel of the client
// called name and returns the round trip.
func (l *Lab) PingFrom(name string, timeout time.Duration) (time.Duration, error) {
	if !l.isClient(name) {
		return 0, fmt.Errorf("unknown client %q", name)
	}
	return ping(l.NS(name), TunnelServer.Addr(), timeout)
}

// ClientEndpoint returns the client's own endpoint for the server peer, as
// its WireGuard reports it (`wg show wg0 endpoints` in the client's
// namespace): the address it sends to and follows when a server's packet
// comes from elsewhere. It must stay Endpoint.
func (l *Lab) ClientEndpoint(ctx context.Context, name string) (netip.AddrPort, error) {
	if !l.isClient(name) {
		return netip.AddrPort{}, fmt.Errorf("unknown client %q", name)
	}
	server, err := l.publicKey(Servers[0].Name)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	out, err := l.wg(ctx, name, "show", WGInterface, "endpoints")
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("reading %s's endpoint: %w", name, err)
	}
	eps, err := parseEndpoints(out)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("reading %s's endpoint: %w", name, err)
	}
	ep, ok := eps[server]
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("%s has no server peer", name)
	}
	return ep, nil
}

// CheckEndpoint returns an error unless the client called name still
// sends to the service address (Endpoint): a client whose endpoint became
// a server's own address (or another NAT mapping of it) is pinned off the
// VIP and will not follow the next failover.
func (l *Lab) CheckEndpoint(ctx context.Context, name string) error {
	ep, err := l.ClientEndpoint(ctx, name)
	if err != nil {
		return err
	}
	if ep != l.Endpoint() {
		return fmt.Errorf("%s's endpoint is %s, not %s: pinned off the VIP", name, ep, l.Endpoint())
	}
	return nil
}

// SetClientEndpoint sets the endpoint of the client called name for the
// server peer, as a handshake from elsewhere would.
func (l *Lab) SetClientEndpoint(ctx context.Context, name string, ep netip.AddrPort) error {
	server, err := l.publicKey(Servers[0].Name)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = l.wg(ctx, name, "set", WGInterface, "peer", server, "endpoint", ep.String())
	return err
}

// parseEndpoints parses `wg show IF endpoints`: "PUBKEY\tADDR:PORT", or
// "(none)" for a peer without one (the zero AddrPort).
func parseEndpoints(out string) (map[string]netip.AddrPort, error) {
	eps := make(map[string]netip.AddrPort)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("parsing endpoints line %q", line)
		}
		if f[1] == "(none)" {
			eps[f[0]] = netip.AddrPort{}
			continue
		}
		ap, err := netip.ParseAddrPort(f[1])
		if err != nil {
			return nil, fmt.Errorf("parsing endpoints line %q: %w", line, err)
		}
		eps[f[0]] = ap
	}
	return eps, nil
}

// ResetClient starts the client called name afresh on every side: each
// server forgets its peer (removed and configured again, so no session,
// endpoint or cached source is left), the router forgets its mappings,
// and the client reconnects to Endpoint. A measurement that starts from
// here does not inherit what an earlier failover left behind.
func (l *Lab) ResetClient(ctx context.Context, name string) error {
	pub, err := l.publicKey(name)
	if err != nil {
		return err
	}
	for _, s := range l.Servers() {
		if _, err := l.wg(ctx, s.Name, "set", WGInterface, "peer", pub, "remove"); err != nil {
			return fmt.Errorf("resetting %s on %s: %w", name, s.Name, err)
		}
		if err := l.ensureWireGuard(ctx, s.Name); err != nil {
			return fmt.Errorf("resetting %s on %s: %w", name, s.Name, err)
		}
	}
	if !l.cfg.Routed {
		if err := l.ForgetMappings(name); err != nil {
			return err
		}
	}
	return l.Reconnect(ctx, name)
}
