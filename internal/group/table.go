package group

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Limits of the Table.
const (
	// MaxSkew is how far a datagram's time may be from the receiver's
	// clock: members need clocks within this of each other (NTP).
	MaxSkew = 30 * time.Second
	// Expire is how long an entry stays after the peer's last handshake
	// or activity it reports: a WireGuard session lives at most 180 s.
	Expire = 180 * time.Second
)

// Refusals of Accept.
var (
	ErrNotMember = errors.New("not a group member")
	ErrSelf      = errors.New("our own datagram")
	ErrReplay    = errors.New("replayed or reordered (sequence not newer)")
	ErrStale     = errors.New("older than the member's last word")
	ErrClock     = errors.New("time too far from ours (clocks apart by more than 30s?)")
)

// Table is what the group's members said, as far as it still holds. It
// does no I/O and is not safe for concurrent use.
type Table struct {
	self    uint64
	silence time.Duration
	members map[netip.Addr]*member
	order   []netip.Addr
}

type member struct {
	id      uint64
	seq     uint64
	sent    time.Time // the sender's time of its newest datagram
	heard   time.Time // our time of it
	state   State
	parts   int
	entries map[int][]stored // by part
	refused uint64
	lastErr string
}

type stored struct {
	Entry
	handshake, active time.Time // zero: none
}

// NewTable accepts datagrams from members only (their addresses) and
// ignores its own (self, the sender id this process sends with). A member
// not heard for silence is silent.
func NewTable(self uint64, members []netip.Addr, silence time.Duration) *Table {
	t := &Table{self: self, silence: silence, members: map[netip.Addr]*member{}}
	for _, a := range members {
		a = a.Unmap()
		if _, ok := t.members[a]; !ok {
			t.members[a] = &member{}
			t.order = append(t.order, a)
		}
	}
	return t
}

// IsMember reports whether datagrams from addr are read at all.
func (t *Table) IsMember(addr netip.Addr) bool {
	_, ok := t.members[addr.Unmap()]
	return ok
}

// Accept takes an authenticated message from addr received at now, or
// says why it changes nothing: not a member, our own, replayed (same
// sender, sequence not newer), stale (a new sender id whose time is not
// newer than the member's last word: a replay from before a restart), or
// too far from our clock.
func (t *Table) Accept(addr netip.Addr, m Message, now time.Time) error {
	addr = addr.Unmap()
	mem, ok := t.members[addr]
	if !ok {
		return ErrNotMember
	}
	err := t.accept(mem, m, now)
	if err != nil && !errors.Is(err, ErrSelf) {
		mem.refused++
		mem.lastErr = err.Error()
	}
	return err
}

func (t *Table) accept(mem *member, m Message, now time.Time) error {
	if m.Sender == t.self {
		return ErrSelf
	}
	if d := now.Sub(m.Time); d > MaxSkew || d < -MaxSkew {
		return fmt.Errorf("%w: %s", ErrClock, d.Round(time.Millisecond))
	}
	switch {
	case m.Sender == mem.id && m.Seq <= mem.seq:
		return ErrReplay
	case m.Sender != mem.id && !m.Time.After(mem.sent):
		return ErrStale
	}
	if m.Sender != mem.id {
		// A restarted member: what the old process said no longer holds.
		mem.entries = nil
	}
	mem.id, mem.seq, mem.sent, mem.heard, mem.state = m.Sender, m.Seq, m.Time, now, m.State
	if mem.entries == nil {
		mem.entries = map[int][]stored{}
	}
	mem.parts = m.Parts
	for p := range mem.entries {
		if p >= m.Parts {
			delete(mem.entries, p)
		}
	}
	es := make([]stored, 0, len(m.Peers))
	for _, e := range m.Peers {
		s := stored{Entry: e}
		if e.HandshakeAge >= 0 {
			s.handshake = now.Add(-e.HandshakeAge)
		}
		if e.ActivityAge >= 0 {
			s.active = now.Add(-e.ActivityAge)
		}
		es = append(es, s)
	}
	mem.entries[m.Part] = es
	return nil
}

// Found is a peer as a member reported it.
type Found struct {
	Member netip.Addr
	Entry
	// Handshake and Active are absolute times (zero: none).
	Handshake, Active time.Time
}

func (s stored) fresh(now time.Time) bool {
	latest := s.handshake
	if s.active.After(latest) {
		latest = s.active
	}
	return !latest.IsZero() && now.Sub(latest) <= Expire
}

// Lookup returns the freshest entry, of any member, whose endpoint is ep
// or whose receiver index is index (when non-zero).
func (t *Table) Lookup(ep netip.AddrPort, index uint32, now time.Time) (Found, bool) {
	ep = netip.AddrPortFrom(ep.Addr().Unmap(), ep.Port())
	var best Found
	found := false
	for _, a := range t.order {
		for _, es := range t.members[a].entries {
			for _, s := range es {
				if !s.fresh(now) || (s.Endpoint != ep && (index == 0 || s.Index != index)) {
					continue
				}
				f := Found{Member: a, Entry: s.Entry, Handshake: s.handshake, Active: s.active}
				if !found || latest(f).After(latest(best)) {
					best, found = f, true
				}
			}
		}
	}
	return best, found
}

func latest(f Found) time.Time {
	if f.Active.After(f.Handshake) {
		return f.Active
	}
	return f.Handshake
}

// MemberStatus is a member's last word, for status.
type MemberStatus struct {
	Address string    `json:"address"`
	State   string    `json:"state"`
	Heard   time.Time `json:"heard"` // zero: never
	Silent  bool      `json:"silent"`
	Peers   int       `json:"peers"` // fresh entries
	Refused uint64    `json:"refused"`
	// LastRefusal is why its latest refused datagram was refused.
	LastRefusal string `json:"last_refusal,omitempty"`
}

// Members returns every member's last word in configuration order.
func (t *Table) Members(now time.Time) []MemberStatus {
	out := make([]MemberStatus, 0, len(t.order))
	for _, a := range t.order {
		m := t.members[a]
		st := MemberStatus{Address: a.String(), State: m.state.String(), Heard: m.heard, Refused: m.refused, LastRefusal: m.lastErr}
		st.Silent = m.heard.IsZero() || now.Sub(m.heard) > t.silence
		if st.Silent {
			st.State = Unknown.String()
		}
		for _, es := range m.entries {
			for _, s := range es {
				if s.fresh(now) {
					st.Peers++
				}
			}
		}
		out = append(out, st)
	}
	return out
}

// Expire drops entries that have outlived Expire, so the table never
// holds more than its members sent within it.
func (t *Table) Expire(now time.Time) {
	for _, m := range t.members {
		for p, es := range m.entries {
			es = slices.DeleteFunc(es, func(s stored) bool { return !s.fresh(now) })
			if len(es) == 0 {
				delete(m.entries, p)
			} else {
				m.entries[p] = es
			}
		}
	}
}
