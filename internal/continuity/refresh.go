package continuity

import "time"

// refreshGate decides when the takeover loop reads the device for a
// packet that names an endpoint the last read did not have (a new
// session). It never drops such a request: a read already in flight may
// have been asked before the session existed, and one that ran less than
// refreshSpacing ago certainly was, so the request waits for the read in
// flight to come back, or for the spacing to pass, and is then served by
// a read of its own.
//
// Dropping it cost a client its takeover: in a fresh lab the client's
// first handshake comes right after its server announces, within
// refreshSpacing of the read that followed that evaluation; the group
// then learned the client only at the next check's read, a second later,
// and a server hung before that read never told the group at all, so the
// other server found no peer for the client's packets and it waited out
// WireGuard's 15 s.
//
// It does no I/O and is owned by the loop.
type refreshGate struct {
	spacing  time.Duration
	inflight bool
	last     time.Time // when the latest read started
	want     bool      // a request waits for a read that starts after it
}

// request asks for a read that starts no earlier than now. start: begin
// one now (the gate counts it as in flight). Otherwise, after > 0: ask
// again (poll) after that long; after == 0: done will start it.
func (g *refreshGate) request(now time.Time) (start bool, after time.Duration) {
	g.want = true
	if g.inflight {
		return false, 0
	}
	if d := g.spacing - now.Sub(g.last); d > 0 && !g.last.IsZero() {
		return false, d
	}
	g.began(now)
	return true, 0
}

// poll serves a waiting request once its spacing has passed (the timer
// request asked for fired).
func (g *refreshGate) poll(now time.Time) (start bool, after time.Duration) {
	if !g.want {
		return false, 0
	}
	return g.request(now)
}

// began records a read started now for another reason (every check's
// kick): it serves every request made before it.
func (g *refreshGate) began(now time.Time) {
	g.inflight, g.last, g.want = true, now, false
}

// busy reports whether a read is in flight.
func (g *refreshGate) busy() bool { return g.inflight }

// done records that the read in flight came back at now and says whether
// a request made while it ran needs a read of its own.
func (g *refreshGate) done(now time.Time) (start bool, after time.Duration) {
	g.inflight = false
	return g.poll(now)
}
