package group

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/wgbird/wgbird/internal/tick"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Node's timing and bounds.
const (
	// Interval is how often a member sends its table; a state change
	// goes out at once.
	Interval = time.Second
	// Silence is how long a member may stay unheard before it counts as
	// silent: three intervals.
	Silence = 3 * Interval
	// minSpacing bounds sending: at most one round per minSpacing.
	minSpacing = 50 * time.Millisecond
	// Receiving is bounded per member: burst datagrams, refilled at
	// rate per second (a full table is MaxParts datagrams per Interval).
	burst = 2 * MaxParts
	rate  = 4 * MaxParts
)

// Snapshot is what this member says: its state and its peers (at most
// MaxParts × MaxEntries; more are left out, the least recently active
// first is the caller's choice of order).
type Snapshot struct {
	State State
	Peers []Entry
}

// Node is one member's end of the group: a UDP socket that sends the
// member's snapshot to every other member and fills a Table from theirs.
type Node struct {
	conn    *net.UDPConn
	key     Key
	port    uint16
	members []netip.Addr
	log     *slog.Logger
	id      uint64

	mu       sync.Mutex
	table    *Table
	seq      uint64
	lastSend time.Time
	buckets  map[netip.Addr]*bucket
	sent     uint64
	dropped  uint64

	wake chan struct{}
}

type bucket struct {
	tokens float64
	at     time.Time
}

// Listen opens the node's socket on bind (an invalid address: all of the
// host's) and port, for members: every member listens on the same port.
func Listen(bind netip.Addr, port int, members []netip.Addr, key Key, log *slog.Logger) (*Node, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	la := &net.UDPAddr{Port: port}
	if bind.IsValid() {
		la.IP = bind.AsSlice()
	}
	conn, err := net.ListenUDP("udp", la)
	if err != nil {
		return nil, fmt.Errorf("opening the group port %d: %w", port, err)
	}
	var idb [8]byte
	if _, err := rand.Read(idb[:]); err != nil {
		conn.Close()
		return nil, err
	}
	n := &Node{
		conn: conn, key: key, port: uint16(port), members: members, log: log,
		id:      binary.BigEndian.Uint64(idb[:]),
		buckets: map[netip.Addr]*bucket{},
		wake:    make(chan struct{}, 1),
	}
	n.table = NewTable(n.id, members, Silence)
	return n, nil
}

// Addr returns the socket's local address.
func (n *Node) Addr() netip.AddrPort { return n.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// Close closes the socket; Run returns.
func (n *Node) Close() error { return n.conn.Close() }

// Changed asks for a send now (a state change), within minSpacing.
func (n *Node) Changed() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// With runs f on the table under the node's lock.
func (n *Node) With(f func(t *Table)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f(n.table)
}

// Run sends snapshot() every Interval and on Changed, and reads the
// members' datagrams, until ctx ends. It closes the socket when it
// returns.
func (n *Node) Run(ctx context.Context, snapshot func() Snapshot) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); n.receive() }()
	defer wg.Wait()
	defer n.conn.Close()
	// Sends fall on the clock grid (tick.Until): with wgbird's other
	// periodic work, and, between members whose clocks NTP keeps, at the
	// same instants as theirs, so their datagrams arrive in the wake-up
	// that sends ours.
	t := time.NewTimer(tick.Until(time.Now(), Interval))
	defer t.Stop()
	n.send(snapshot())
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			t.Reset(tick.Until(time.Now(), Interval))
		case <-n.wake:
			n.mu.Lock()
			wait := minSpacing - time.Since(n.lastSend)
			n.mu.Unlock()
			if wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
		n.send(snapshot())
		n.With(func(t *Table) { t.Expire(time.Now()) })
	}
}

// send seals the snapshot into datagrams and sends each to every member.
func (n *Node) send(s Snapshot) {
	peers := s.Peers
	if max := MaxParts * MaxEntries; len(peers) > max {
		peers = peers[:max]
	}
	parts := max(1, (len(peers)+MaxEntries-1)/MaxEntries)
	n.mu.Lock()
	n.lastSend = time.Now()
	n.mu.Unlock()
	for p := range parts {
		chunk := peers[min(p*MaxEntries, len(peers)):min((p+1)*MaxEntries, len(peers))]
		n.mu.Lock()
		n.seq++
		m := Message{Sender: n.id, Seq: n.seq, Time: time.Now(), State: s.State, Part: p, Parts: parts, Peers: chunk}
		n.mu.Unlock()
		b, err := Seal(n.key, m)
		if err != nil {
			n.log.Error("group: sealing a datagram", "err", err)
			return
		}
		for _, a := range n.members {
			_ = n.conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := n.conn.WriteToUDPAddrPort(b, netip.AddrPortFrom(a, n.port)); err == nil {
				n.mu.Lock()
				n.sent++
				n.mu.Unlock()
			}
		}
	}
}

// receive reads datagrams until the socket is closed.
func (n *Node) receive() {
	buf := make([]byte, MaxDatagram+1)
	logged := map[string]bool{}
	for {
		sz, from, err := n.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		addr := from.Addr().Unmap()
		now := time.Now()
		n.mu.Lock()
		ok := n.table.IsMember(addr) && n.allow(addr, now)
		if !ok {
			n.dropped++
		}
		n.mu.Unlock()
		if !ok {
			continue
		}
		m, err := Open(n.key, buf[:sz])
		n.mu.Lock()
		if err == nil {
			err = n.table.Accept(addr, m, now)
		} else {
			n.table.members[addr].refused++
			n.table.members[addr].lastErr = err.Error()
		}
		n.mu.Unlock()
		if err != nil && !errors.Is(err, ErrSelf) {
			// Once per member and reason, not per datagram.
			if k := addr.String() + err.Error(); !logged[k] && len(logged) < 64 {
				logged[k] = true
				n.log.Warn("group: datagram refused", "from", from, "err", err)
			}
		}
	}
}

// allow is the per-member token bucket; n.mu is held.
func (n *Node) allow(addr netip.Addr, now time.Time) bool {
	b := n.buckets[addr]
	if b == nil {
		b = &bucket{tokens: burst, at: now}
		n.buckets[addr] = b
	}
	b.tokens = min(burst, b.tokens+now.Sub(b.at).Seconds()*rate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Stats are the node's counters.
type Stats struct {
	Sent    uint64 `json:"sent"`
	Dropped uint64 `json:"dropped"`
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return Stats{Sent: n.sent, Dropped: n.dropped}
}
