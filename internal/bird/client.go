package bird

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	birdsocket "github.com/czerwonk/bird_socket"
)

// Options tune a Client. Zero fields take their defaults.
type Options struct {
	// Timeout bounds every call, together with the context's deadline
	// (the earlier wins). Default 2s.
	Timeout time.Duration
	// MinBackoff is the wait after the first failed connection attempt; it
	// doubles with every further failure up to MaxBackoff and is reset by a
	// success. Defaults 50ms and 2s.
	MinBackoff, MaxBackoff time.Duration
	// BufferSize is the size of each read from the socket. Default
	// 4 KiB, bird_socket's own: it allocates the buffer anew for every
	// command, twice a pass (16 KiB made it half of an idle wgbird's
	// allocations, and so of its collections), and `show protocols` of a
	// server with a few dozen protocols is a few kilobytes; a longer
	// reply takes more reads.
	BufferSize int
}

const (
	defaultTimeout    = 2 * time.Second
	defaultMinBackoff = 50 * time.Millisecond
	defaultMaxBackoff = 2 * time.Second
	defaultBufferSize = 4 << 10
)

// Client talks to BIRD over its control socket through one persistent
// connection. It is safe for concurrent use: calls take turns, and each is
// bounded by min(its context's deadline, Options.Timeout), including the
// time it waits for its turn.
//
// It wraps github.com/czerwonk/bird_socket, which has no deadlines, reports
// error replies as success and decides that a reply is complete by looking
// at each read on its own. So the Client closes the connection when a
// deadline passes, parses every reply with ParseReply, and when a reply is
// incomplete or has trailing data (the connection is out of step) or the
// connection was lost, closes it and sends the command once more on a new
// connection: every command it sends is idempotent. After a lost working
// connection it reconnects at once (BIRD restarts are common), after a
// failed attempt only when the backoff has passed; until then calls fail at
// once with the last error.
//
// A connection attempt to a hung BIRD (SIGSTOP: the kernel accepts the
// connection but the greeting never comes) cannot be interrupted, as the
// library offers no way to close a connection while it is still connecting.
// It runs in its own goroutine; a call that times out leaves it running and
// later calls wait for that same attempt instead of starting another, so a
// hung BIRD costs one goroutine and one socket however long it hangs. When
// the attempt ends, the next call takes its connection (or its error).
//
// Clients made by Sibling have connections of their own to the same BIRD
// but share that discipline: one connection attempt in flight and one
// backoff for all of them, so a hung BIRD costs one goroutine and one
// socket however many connections wgbird has to it.
type Client struct {
	path string
	opts Options
	t    *target // shared with the client's siblings

	// turn is held by the one call that uses the fields below.
	turn chan struct{}

	sock *birdsocket.BirdSocket // connected, or nil
	dial *dialing               // this client's attempt in flight or not yet taken, or nil

	mu     sync.Mutex // guards closed and the end of a dialing
	closed bool
}

// target is what the connections to one BIRD share: its connection
// attempt in flight and the backoff after a failed one.
type target struct {
	mu       sync.Mutex
	inflight *dialing      // the last attempt started, by any of the clients
	backoff  time.Duration // wait after the last failed attempt, 0 after success
	nextDial time.Time     // no new attempt before this
	lastErr  error         // why the last attempt failed
}

// dialing is one connection attempt. Its fields other than done are written
// by the attempt's goroutine before done is closed.
type dialing struct {
	done chan struct{}
	sock *birdsocket.BirdSocket
	err  error // final: the socket is closed when it is set
}

// NewClient returns a client for BIRD's control socket at socketPath. It
// connects on first use.
func NewClient(socketPath string, opts Options) *Client {
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = defaultMinBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = defaultMaxBackoff
	}
	opts.MaxBackoff = max(opts.MaxBackoff, opts.MinBackoff)
	if opts.BufferSize <= 0 {
		opts.BufferSize = defaultBufferSize
	}
	return &Client{path: socketPath, opts: opts, t: &target{}, turn: make(chan struct{}, 1)}
}

// Sibling returns a client with a connection of its own to c's BIRD, reads
// of bufferSize bytes (0: c's) and c's timeout, which shares c's connection
// attempts and backoff: while an attempt by either waits for BIRD's
// greeting, the other's calls wait for that attempt instead of starting
// one. Closing one does not close the other.
func (c *Client) Sibling(bufferSize int) *Client {
	opts := c.opts
	if bufferSize > 0 {
		opts.BufferSize = bufferSize
	}
	return &Client{path: c.path, opts: opts, t: c.t, turn: make(chan struct{}, 1)}
}

// Protocols returns the protocols of `show protocols`.
func (c *Client) Protocols(ctx context.Context) ([]Protocol, error) {
	r, err := c.do(ctx, "show protocols")
	if err != nil {
		return nil, fmt.Errorf("reading protocols: %w", err)
	}
	ps, err := ParseProtocols(r)
	if err != nil {
		return nil, fmt.Errorf("reading protocols: %w", err)
	}
	return ps, nil
}

// Enable enables the protocol; enabling an enabled protocol succeeds.
func (c *Client) Enable(ctx context.Context, name string) error {
	return c.setProtocol(ctx, name, "enabling", "enable", 10, 11)
}

// Disable disables the protocol; disabling a disabled protocol succeeds.
func (c *Client) Disable(ctx context.Context, name string) error {
	return c.setProtocol(ctx, name, "disabling", "disable", 8, 9)
}

// setProtocol sends `enable "name"` or `disable "name"` and expects one line
// "name: ..." with code already ("already enabled") or done ("enabled"). The name is quoted, which makes it
// a pattern matching only itself (ValidSymbol admits no pattern characters):
// unquoted, BIRD would read `all` as every protocol, and an unknown name is
// a syntax error rather than "8003 No protocols match".
func (c *Client) setProtocol(ctx context.Context, name, action, verb string, already, done int) error {
	if !ValidSymbol(name) {
		return fmt.Errorf("%s protocol %q: not a BIRD symbol ([A-Za-z_][A-Za-z0-9_]*, at most 64 bytes)", action, name)
	}
	r, err := c.do(ctx, verb+` "`+name+`"`)
	if err == nil {
		err = r.Err()
	}
	if err == nil {
		// One line per matching protocol, then "0000 ".
		if l := r.Lines[0]; len(r.Lines) != 2 || (l.Code != already && l.Code != done) || !strings.HasPrefix(l.Text, name+": ") {
			err = fmt.Errorf("unexpected reply %q", l.Text)
		}
	}
	if err != nil {
		return fmt.Errorf("%s protocol %q: %w", action, name, err)
	}
	return nil
}

// Status returns BIRD's version ("2.0.12") from `show status`.
func (c *Client) Status(ctx context.Context) (version string, err error) {
	s, err := c.ReadStatus(ctx)
	return s.Version, err
}

// Query sends one command and returns BIRD's reply; an error reply also
// gives its *ReplyError. Like every command, it is sent a second time when
// the connection turns out to be lost or out of step, so it must be
// idempotent (`show protocols all` is). Commands that change the state of
// the connection, such as `restrict` or `echo`, last only until the next
// reconnection.
func (c *Client) Query(ctx context.Context, cmd string) (Reply, error) {
	if strings.TrimSpace(cmd) == "" || strings.ContainsAny(cmd, "\r\n") {
		return Reply{}, fmt.Errorf("bird command %q: must be one non-empty line", cmd)
	}
	r, err := c.do(ctx, cmd)
	if err == nil {
		err = r.Err()
	}
	if err != nil {
		return r, fmt.Errorf("bird command %q: %w", cmd, err)
	}
	return r, nil
}

// Close closes the connection. A connection attempt still in flight is
// closed when it ends. Calls after Close fail.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	// Every holder of the turn is bounded by its deadline, and later ones
	// return at once now that closed is set.
	c.turn <- struct{}{}
	defer func() { <-c.turn }()
	if c.sock != nil {
		c.sock.Close()
		c.sock = nil
	}
	if d := c.dial; d != nil {
		c.dial = nil
		c.mu.Lock()
		ended := isDone(d.done)
		c.mu.Unlock()
		if ended && d.err == nil {
			d.sock.Close() // else the attempt's goroutine closes it
		}
	}
	return nil
}

var errClosed = fmt.Errorf("bird client: %w", net.ErrClosed)

// do sends one command and returns the complete reply, error replies
// included; the error is about getting it.
func (c *Client) do(ctx context.Context, cmd string) (Reply, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, c.opts.Timeout,
		fmt.Errorf("no answer from bird within %v: %w", c.opts.Timeout, context.DeadlineExceeded))
	defer cancel()
	select {
	case c.turn <- struct{}{}:
	case <-ctx.Done():
		return Reply{}, fmt.Errorf("waiting for another call to bird: %w", context.Cause(ctx))
	}
	defer func() { <-c.turn }()

	var first error
	for {
		if c.isClosed() {
			return Reply{}, errClosed
		}
		sock, err := c.connection(ctx)
		if err == nil {
			var r Reply
			r, err = c.roundTrip(ctx, sock, cmd)
			if err == nil {
				return r, nil
			}
			// Lost or out of step: the next attempt starts at once.
			sock.Close()
			c.sock = nil
		}
		switch {
		case first != nil:
			return Reply{}, fmt.Errorf("%w, then on a new connection: %w", first, err)
		case ctx.Err() != nil || sock == nil:
			return Reply{}, err
		}
		first = err
	}
}

// roundTrip sends cmd on sock and reads the reply, closing the connection
// when ctx ends first.
func (c *Client) roundTrip(ctx context.Context, sock *birdsocket.BirdSocket, cmd string) (Reply, error) {
	// sock.Connect has returned (happens-before: dialing.done), so Close,
	// which reads the library's conn field, may run concurrently with Query.
	stop := context.AfterFunc(ctx, sock.Close)
	out, err := sock.Query(cmd)
	if !stop() {
		return Reply{}, context.Cause(ctx)
	}
	if err != nil {
		return Reply{}, fmt.Errorf("connection to bird lost: %w", err)
	}
	r, err := ParseReply(out)
	if err != nil {
		return Reply{}, fmt.Errorf("reply out of step with the command: %w", err)
	}
	return r, nil
}

// connection returns the open connection, or waits for this client's
// connection attempt in flight, or starts one (see target.start).
func (c *Client) connection(ctx context.Context) (*birdsocket.BirdSocket, error) {
	if c.sock != nil {
		return c.sock, nil
	}
	if c.dial == nil {
		d, err := c.t.start(ctx, c)
		if err != nil {
			return nil, err
		}
		c.dial = d
	}
	d := c.dial
	if !isDone(d.done) {
		select {
		case <-d.done:
		case <-ctx.Done():
			return nil, c.greetingTimeout(ctx)
		}
	}
	c.dial = nil
	if d.err != nil {
		return nil, d.err
	}
	c.sock = d.sock
	return c.sock, nil
}

func (c *Client) greetingTimeout(ctx context.Context) error {
	return fmt.Errorf("connecting to bird at %s: waiting for the greeting: %w", c.path, context.Cause(ctx))
}

// start starts a connection attempt for c, unless backing off, after
// waiting for an attempt in flight by any client of this BIRD (c's own
// never is: c takes its own before starting another).
func (t *target) start(ctx context.Context, c *Client) (*dialing, error) {
	for {
		t.mu.Lock()
		if d := t.inflight; d != nil && !isDone(d.done) {
			t.mu.Unlock()
			select {
			case <-d.done:
				continue
			case <-ctx.Done():
				return nil, c.greetingTimeout(ctx)
			}
		}
		if time.Until(t.nextDial) > 0 {
			// The same error as the attempt that failed, word for word,
			// so that callers logging each distinct error log it once.
			err := t.lastErr
			t.mu.Unlock()
			return nil, err
		}
		d := c.startDial()
		t.inflight = d
		t.mu.Unlock()
		return d, nil
	}
}

// ended records how an attempt ended: the backoff after a failure, none
// after a success.
func (t *target) ended(c *Client, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err == nil {
		t.backoff, t.nextDial, t.lastErr = 0, time.Time{}, nil
		return
	}
	t.lastErr = err
	t.backoff = min(max(2*t.backoff, c.opts.MinBackoff), c.opts.MaxBackoff)
	t.nextDial = time.Now().Add(t.backoff)
}

// startDial starts a connection attempt in its own goroutine.
func (c *Client) startDial() *dialing {
	d := &dialing{
		done: make(chan struct{}),
		sock: birdsocket.NewSocket(c.path, birdsocket.WithBufferSize(c.opts.BufferSize)),
	}
	go func() {
		greeting, err := d.sock.Connect()
		if err == nil {
			err = checkGreeting(greeting)
		}
		if err != nil {
			d.sock.Close() // the library's Connect leaves it open when reading the greeting fails
			var op *net.OpError
			if errors.As(err, &op) && op.Op == "dial" {
				err = fmt.Errorf("connecting to bird: %w", err) // names the socket already
			} else {
				err = fmt.Errorf("connecting to bird at %s: %w", c.path, err)
			}
		}
		// Recorded before done is closed: a sibling waiting for this
		// attempt sees its backoff.
		c.t.ended(c, err)
		c.mu.Lock()
		d.err = err
		close(d.done)
		closed := c.closed
		c.mu.Unlock()
		if closed && err == nil {
			d.sock.Close()
		}
	}()
	return d
}

// checkGreeting checks BIRD's first reply on a connection: "0001 BIRD
// 2.0.12 ready.". The library reads it with a single read.
func checkGreeting(b []byte) error {
	r, err := ParseReply(b)
	if err != nil {
		return fmt.Errorf("reading the greeting: %w", err)
	}
	if r.Code != 1 {
		return fmt.Errorf("greeting %04d %q, want 0001", r.Code, r.Lines[len(r.Lines)-1].Text)
	}
	return nil
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
