package bird

import (
	"bufio"
	"context"
	"errors"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeBird is a tiny BIRD control socket: it greets each connection and
// answers each command with pieces written 50ms apart, so that the client
// sees them in separate reads.
type fakeBird struct {
	t    *testing.T
	path string
	ln   net.Listener
	// greet gives the greeting of connection n (from 1) in pieces; nil
	// means never to greet.
	greet func(n int) []string
	// answer gives the reply on connection n in pieces; nil means never to
	// answer.
	answer func(n int, cmd string) []string
	// hangUp closes each connection after its first reply, as a restarting
	// BIRD does.
	hangUp bool

	mu    sync.Mutex
	conns []net.Conn
	cmds  []string // "n: cmd"
	wg    sync.WaitGroup
}

const pieceGap = 50 * time.Millisecond

func greetAlways(int) []string { return []string{capGreeting} }

// answerCaptured answers as bird 2.0.12 does, from the captured replies.
func answerCaptured(_ int, cmd string) []string {
	switch cmd {
	case "show protocols":
		return []string{capShowProtocols}
	case "show protocols all":
		return []string{capShowProtocolsAll}
	case "show status":
		return []string{capShowStatus}
	case `enable "wg_vip4"`:
		return []string{capEnable}
	case `enable "wg_up"`:
		return []string{strings.ReplaceAll(capEnableAgain, "wg_vip4", "wg_up")}
	case `disable "wg_vip4"`:
		return []string{capAccessDenied}
	case `disable "wg_up"`:
		return []string{strings.ReplaceAll(capDisableAgain, "wg_vip4", "wg_up")}
	case "restrict":
		return []string{capRestrict}
	case `disable "wg_mixup"`:
		return []string{capEnable}
	case "":
		return []string{capEmptyLine}
	}
	return []string{capEnableQuotedNo}
}

func newFakeBird(t *testing.T, path string, greet func(int) []string, answer func(int, string) []string) *fakeBird {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "b.ctl")
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeBird{t: t, path: path, ln: ln, greet: greet, answer: answer}
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(f.stop)
	return f
}

func (f *fakeBird) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns = append(f.conns, c)
		n := len(f.conns)
		f.mu.Unlock()
		f.wg.Add(1)
		go f.handle(n, c)
	}
}

func (f *fakeBird) handle(n int, c net.Conn) {
	defer f.wg.Done()
	defer c.Close()
	write := func(pieces []string) bool {
		for i, p := range pieces {
			if i > 0 {
				time.Sleep(pieceGap)
			}
			if _, err := c.Write([]byte(p)); err != nil {
				return false
			}
		}
		return true
	}
	r := bufio.NewReader(c)
	g := f.greet(n)
	if g == nil {
		r.ReadByte() // until the client or stop closes the connection
		return
	}
	if !write(g) {
		return
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.TrimSuffix(line, "\n")
		f.mu.Lock()
		f.cmds = append(f.cmds, strings.Join([]string{string(rune('0' + n)), cmd}, ": "))
		f.mu.Unlock()
		a := f.answer(n, cmd)
		if a == nil {
			r.ReadByte()
			return
		}
		if !write(a) || f.hangUp {
			return
		}
	}
}

// stop closes the listener and every connection and waits for the
// server's goroutines.
func (f *fakeBird) stop() {
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *fakeBird) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cmds...)
}

func (f *fakeBird) connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns)
}

func newTestClient(t *testing.T, path string, timeout time.Duration) *Client {
	t.Helper()
	c := NewClient(path, Options{Timeout: timeout, MinBackoff: 10 * time.Millisecond, MaxBackoff: 80 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	return c
}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestClientCommands(t *testing.T) {
	f := newFakeBird(t, "", greetAlways, answerCaptured)
	c := newTestClient(t, f.path, 2*time.Second)
	ctx := context.Background()

	ps, err := c.Protocols(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []Protocol{
		{"device1", "Device", "---", "up", "17:28:23.462", ""},
		{"wg_vip4", "Static", "master4", "down", "17:28:23.462", ""},
		{"bgp_router", "BGP", "---", "start", "17:28:23.462", "Idle"},
	}
	if diff := cmp.Diff(want, ps); diff != "" {
		t.Errorf("Protocols (-want +got):\n%s", diff)
	}
	if v, err := c.Status(ctx); v != "2.0.12" || err != nil {
		t.Errorf("Status = %q, %v, want 2.0.12", v, err)
	}
	errs := []struct {
		name string
		err  error
		want string
	}{
		{"enable", c.Enable(ctx, "wg_vip4"), "<nil>"},
		{"enable already", c.Enable(ctx, "wg_up"), "<nil>"},
		{"disable already", c.Disable(ctx, "wg_up"), "<nil>"},
		{"disable denied", c.Disable(ctx, "wg_vip4"), `disabling protocol "wg_vip4": bird replied 8007: Access denied`},
		{"enable unknown", c.Enable(ctx, "nosuch"), `enabling protocol "nosuch": bird replied 8003: No protocols match`},
		// A reply for enable, not for disable.
		{"disable gets enable's reply", c.Disable(ctx, "wg_mixup"), `disabling protocol "wg_mixup": unexpected reply "wg_vip4: enabled"`},
		{"invalid name", c.Enable(ctx, `wg_vip4"; disable all; "`), `enabling protocol "wg_vip4\"; disable all; \"": not a BIRD symbol ([A-Za-z_][A-Za-z0-9_]*, at most 64 bytes)`},
		{"invalid name disable", c.Disable(ctx, "all wg"), `disabling protocol "all wg": not a BIRD symbol ([A-Za-z_][A-Za-z0-9_]*, at most 64 bytes)`},
		{"query two lines", func() error { _, err := c.Query(ctx, "show status\ndisable all"); return err }(), `bird command "show status\ndisable all": must be one non-empty line`},
		{"query empty", func() error { _, err := c.Query(ctx, " "); return err }(), `bird command " ": must be one non-empty line`},
		{"query", func() error { _, err := c.Query(ctx, "show protocols all"); return err }(), "<nil>"},
		{"query error", func() error { _, err := c.Query(ctx, "restrict"); return err }(), "<nil>"},
		{"query error", func() error { _, err := c.Query(ctx, "show route"); return err }(), `bird command "show route": bird replied 8003: No protocols match`},
	}
	for _, e := range errs {
		if got := errText(e.err); got != e.want {
			t.Errorf("%s: error %q, want %q", e.name, got, e.want)
		}
	}
	var re *ReplyError
	if err := c.Disable(ctx, "wg_vip4"); !errors.As(err, &re) || re.Code != 8007 {
		t.Errorf("Disable error %v, want a *ReplyError 8007", err)
	}
	wantCmds := []string{
		"1: show protocols",
		"1: show status",
		`1: enable "wg_vip4"`,
		`1: enable "wg_up"`,
		`1: disable "wg_up"`,
		`1: disable "wg_vip4"`,
		`1: enable "nosuch"`,
		`1: disable "wg_mixup"`,
		"1: show protocols all",
		"1: restrict",
		"1: show route",
		`1: disable "wg_vip4"`,
	}
	if diff := cmp.Diff(wantCmds, f.commands()); diff != "" {
		t.Errorf("commands sent (-want +got):\n%s", diff)
	}
}

// TestClientInvalidNameNeverConnects: a name that is not a symbol is refused
// before anything reaches the socket.
func TestClientInvalidNameNeverConnects(t *testing.T) {
	f := newFakeBird(t, "", greetAlways, answerCaptured)
	c := newTestClient(t, f.path, time.Second)
	for _, name := range []string{"", "all wg", "wg*", "x\nshow status", strings.Repeat("x", 65)} {
		if err := c.Enable(context.Background(), name); err == nil {
			t.Errorf("Enable(%q) succeeded", name)
		}
		if err := c.Disable(context.Background(), name); err == nil {
			t.Errorf("Disable(%q) succeeded", name)
		}
	}
	if n := f.connections(); n != 0 {
		t.Errorf("%d connections, want 0", n)
	}
}

// TestClientSplitReplies sends replies in pieces. bird_socket ends a read
// loop at the first read containing a line that starts with 0, 8 or 9
// followed by three digits, so it may stop early, late or never; the client
// must still get the reply right or fail cleanly within its deadline, and
// work again on the next call.
func TestClientSplitReplies(t *testing.T) {
	const timeout = 400 * time.Millisecond
	protocolsCut := strings.Index(capShowProtocols, "0000 \n") + 3
	tests := []struct {
		name     string
		greet    []string // on the first connection
		pieces   []string // first reply on the first connection
		cmd      string
		err      string // substring; "" for success
		wantCmds []string
	}{
		{
			name:     "split inside a row",
			pieces:   []string{capShowProtocols[:90], capShowProtocols[90:]},
			cmd:      "show protocols",
			wantCmds: []string{"1: show protocols", "1: show protocols"},
		},
		{
			name:     "split at every line",
			pieces:   strings.SplitAfter(capShowStatus, "\n"),
			cmd:      "show status",
			wantCmds: []string{"1: show status", "1: show status", "1: show protocols"},
		},
		{
			// The library stops after "0011-...": the client sees an
			// incomplete reply and sends the command again on a new
			// connection.
			name:     "ends early after a continued line",
			pieces:   []string{"0011-wg_vip4: enabled\n", "0000 \n"},
			cmd:      `enable "wg_vip4"`,
			wantCmds: []string{`1: enable "wg_vip4"`, `2: enable "wg_vip4"`, `2: enable "wg_vip4"`, `2: show protocols`},
		},
		{
			name:     "final line cut",
			pieces:   []string{"0011-wg_vip4: enabled\n000", "0 \n"},
			cmd:      `enable "wg_vip4"`,
			wantCmds: []string{`1: enable "wg_vip4"`, `2: enable "wg_vip4"`, `2: enable "wg_vip4"`, `2: show protocols`},
		},
		{
			// No read has a line starting with [089]ddd: the library
			// never returns; the deadline ends the call.
			name:     "never recognised",
			pieces:   []string{capShowProtocols[:protocolsCut], capShowProtocols[protocolsCut:]},
			cmd:      "show protocols",
			err:      "no answer from bird within 400ms: context deadline exceeded",
			wantCmds: []string{"1: show protocols", "2: show protocols"},
		},
		{
			name:     "trailing data",
			pieces:   []string{capEnable + "0000 \n"},
			cmd:      `enable "wg_vip4"`,
			wantCmds: []string{`1: enable "wg_vip4"`, `2: enable "wg_vip4"`, `2: enable "wg_vip4"`, `2: show protocols`},
		},
		{
			name:     "asynchronous line",
			pieces:   []string{capEnable + "+Enabling protocol wg_vip4\n"},
			cmd:      `enable "wg_vip4"`,
			wantCmds: []string{`1: enable "wg_vip4"`, `2: enable "wg_vip4"`, `2: enable "wg_vip4"`, `2: show protocols`},
		},
		{
			// The library reads the greeting with a single read.
			name:     "greeting split",
			greet:    []string{"0001 BIRD", " 2.0.12 ready.\n"},
			cmd:      "show protocols",
			err:      "connecting to bird at PATH: reading the greeting: incomplete reply: line 1 \"0001 BIRD\" has no newline",
			wantCmds: []string{"2: show protocols"},
		},
		{
			name:     "wrong greeting",
			greet:    []string{"0013 Daemon is up and running\n"},
			cmd:      "show protocols",
			err:      `connecting to bird at PATH: greeting 0013 "Daemon is up and running", want 0001`,
			wantCmds: []string{"2: show protocols"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f *fakeBird
			f = newFakeBird(t, "",
				func(n int) []string {
					if n == 1 && tt.greet != nil {
						return tt.greet
					}
					return []string{capGreeting}
				},
				func(n int, cmd string) []string {
					if n == 1 && len(f.commands()) == 1 {
						return tt.pieces
					}
					if cmd == tt.cmd {
						if strings.HasPrefix(cmd, "enable") {
							return []string{capEnable}
						}
						return answerCaptured(n, cmd)
					}
					return answerCaptured(n, cmd)
				})
			c := newTestClient(t, f.path, timeout)
			ctx := context.Background()
			start := time.Now()
			_, err := c.Query(ctx, tt.cmd)
			elapsed := time.Since(start)
			want := strings.ReplaceAll(tt.err, "PATH", f.path)
			if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
				t.Fatalf("Query(%q) error %v, want %q", tt.cmd, err, want)
			}
			if elapsed > timeout+time.Second {
				t.Errorf("Query took %v with a timeout of %v", elapsed, timeout)
			}
			// The next call works, on a connection in step.
			time.Sleep(100 * time.Millisecond) // past the backoff after a bad greeting
			if _, err := c.Query(ctx, tt.cmd); err != nil {
				t.Fatalf("second Query(%q): %v", tt.cmd, err)
			}
			if tt.cmd != "show protocols" {
				if _, err := c.Protocols(ctx); err != nil {
					t.Fatalf("Protocols after: %v", err)
				}
			}
			if diff := cmp.Diff(tt.wantCmds, f.commands()); diff != "" {
				t.Errorf("commands sent (-want +got):\n%s", diff)
			}
		})
	}
}

// settleGoroutines waits until at most want goroutines run and returns the
// count; it polls briefly, as exiting goroutines take a moment.
func settleGoroutines(want int) int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClientHungBird: a BIRD that accepts connections and never greets (as
// when SIGSTOPped). Every call returns within its timeout, one connection
// attempt at a time is in flight, and the goroutines return to the baseline
// when the server goes away.
func TestClientHungBird(t *testing.T) {
	const timeout = 200 * time.Millisecond
	base := runtime.NumGoroutine()
	f := newFakeBird(t, "", func(int) []string { return nil }, answerCaptured)
	c := NewClient(f.path, Options{Timeout: timeout})
	var during []int
	for i := range 5 {
		start := time.Now()
		err := c.Enable(context.Background(), "wg_vip4")
		elapsed := time.Since(start)
		want := `enabling protocol "wg_vip4": connecting to bird at ` + f.path + ": waiting for the greeting: no answer from bird within 200ms: context deadline exceeded"
		if errText(err) != want {
			t.Fatalf("call %d: error %q, want %q", i, errText(err), want)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("call %d: error does not wrap context.DeadlineExceeded", i)
		}
		if elapsed > timeout+time.Second {
			t.Errorf("call %d took %v with a timeout of %v", i, elapsed, timeout)
		}
		if i == 0 {
			during = append(during, runtime.NumGoroutine())
		} else {
			during = append(during, settleGoroutines(during[0]))
		}
	}
	if n := f.connections(); n != 1 {
		t.Errorf("%d connections during the hang, want 1 (one attempt in flight)", n)
	}
	for i, n := range during {
		if n > during[0] {
			t.Errorf("goroutines grew during the hang: %v (call %d)", during, i)
			break
		}
	}
	f.stop() // the attempt reads EOF and ends
	c.Close()
	if n := settleGoroutines(base); n > base {
		t.Errorf("%d goroutines after the server went away, baseline %d", n, base)
	}
}

// TestClientHungBirdResumes: a connection attempt that times out is taken
// by a later call once the greeting comes.
func TestClientHungBirdResumes(t *testing.T) {
	const timeout = 200 * time.Millisecond
	release := make(chan struct{})
	f := newFakeBird(t, "", func(int) []string { <-release; return []string{capGreeting} }, answerCaptured)
	c := newTestClient(t, f.path, timeout)
	if _, err := c.Protocols(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Protocols while hung: %v, want a deadline error", err)
	}
	close(release)
	if _, err := c.Protocols(context.Background()); err != nil {
		t.Fatalf("Protocols after the greeting: %v", err)
	}
	if n := f.connections(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// TestClientSiblingHungBird: a client and its sibling against a BIRD that
// accepts connections and never greets: one connection attempt is in
// flight for both, the sibling's calls wait for it within their deadline,
// and once the greeting comes each has a connection of its own.
func TestClientSiblingHungBird(t *testing.T) {
	const timeout = 150 * time.Millisecond
	release := make(chan struct{})
	f := newFakeBird(t, "", func(int) []string { <-release; return []string{capGreeting} }, answerCaptured)
	var once sync.Once
	unhang := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unhang) // before f.stop, which waits for the greeting
	c := newTestClient(t, f.path, timeout)
	s := c.Sibling(4 << 10)
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	var during []int
	for i := range 4 {
		_, err := c.Protocols(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call %d: Protocols while hung: %v, want a deadline error", i, err)
		}
		start := time.Now()
		_, err = s.ReadStatus(ctx)
		want := "reading bird status: connecting to bird at " + f.path + ": waiting for the greeting: no answer from bird within 150ms: context deadline exceeded"
		if errText(err) != want {
			t.Fatalf("call %d: sibling's error %q, want %q", i, errText(err), want)
		}
		if el := time.Since(start); el > timeout+time.Second {
			t.Errorf("call %d: the sibling's call took %v with a timeout of %v", i, el, timeout)
		}
		if i == 0 {
			during = append(during, runtime.NumGoroutine())
		} else {
			during = append(during, settleGoroutines(during[0]))
		}
	}
	if n := f.connections(); n != 1 {
		t.Errorf("%d connections during the hang, want 1 (one attempt in flight for both clients)", n)
	}
	for i, n := range during {
		if n > during[0] {
			t.Errorf("goroutines grew during the hang: %v (call %d)", during, i)
			break
		}
	}
	unhang()
	if _, err := s.ReadStatus(ctx); err != nil {
		t.Fatalf("sibling's ReadStatus once BIRD greets: %v", err)
	}
	if _, err := c.Protocols(ctx); err != nil {
		t.Fatalf("Protocols once BIRD greets: %v", err)
	}
	if n := f.connections(); n != 2 {
		t.Errorf("%d connections, want 2 (one each)", n)
	}
}

// TestClientSiblingBackoff: a sibling honours the backoff of its client's
// failed attempt and fails at once with the same words.
func TestClientSiblingBackoff(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.ctl")
	c := NewClient(path, Options{Timeout: time.Second, MinBackoff: time.Minute, MaxBackoff: time.Minute})
	defer c.Close()
	s := c.Sibling(0)
	defer s.Close()
	ctx := context.Background()
	dialErr := "connecting to bird: dial unix " + path + ": connect: no such file or directory"
	if err := c.Enable(ctx, "wg_vip4"); errText(err) != `enabling protocol "wg_vip4": `+dialErr {
		t.Fatalf("error %q, want %q", errText(err), dialErr)
	}
	newFakeBird(t, path, greetAlways, answerCaptured)
	if _, err := s.Protocols(ctx); errText(err) != "reading protocols: "+dialErr {
		t.Errorf("sibling during the backoff: %q, want %q", errText(err), dialErr)
	}
}

// TestClientSilentBird: BIRD greets, then never answers (SIGSTOPped after
// the connection was made). The deadline closes the connection; no
// goroutine is left behind.
func TestClientSilentBird(t *testing.T) {
	const timeout = 200 * time.Millisecond
	base := runtime.NumGoroutine()
	f := newFakeBird(t, "", greetAlways, func(int, string) []string { return nil })
	c := NewClient(f.path, Options{Timeout: timeout})
	for i := range 3 {
		start := time.Now()
		_, err := c.Protocols(context.Background())
		if want := "reading protocols: no answer from bird within 200ms: context deadline exceeded"; errText(err) != want {
			t.Fatalf("call %d: error %q, want %q", i, errText(err), want)
		}
		if elapsed := time.Since(start); elapsed > timeout+time.Second {
			t.Errorf("call %d took %v with a timeout of %v", i, elapsed, timeout)
		}
	}
	if diff := cmp.Diff([]string{"1: show protocols", "2: show protocols", "3: show protocols"}, f.commands()); diff != "" {
		t.Errorf("commands (-want +got):\n%s", diff)
	}
	c.Close()
	f.stop()
	if n := settleGoroutines(base); n > base {
		t.Errorf("%d goroutines at the end, baseline %d", n, base)
	}
}

// TestClientContextDeadline: the context's deadline wins when earlier than
// Options.Timeout, also while waiting for another call's turn.
func TestClientContextDeadline(t *testing.T) {
	f := newFakeBird(t, "", greetAlways, func(int, string) []string { return nil })
	c := newTestClient(t, f.path, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Protocols(ctx)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("call %d: %v, want a deadline error", i, err)
		}
	}
	if ctx.Err() == nil {
		t.Errorf("calls returned before the context's deadline")
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Enable(canceled, "wg_vip4"); !errors.Is(err, context.Canceled) {
		t.Errorf("Enable with a canceled context: %v", err)
	}
}

// TestClientBirdRestarts: BIRD closes the connection after each reply, as a
// restarted BIRD leaves it; each call reconnects at once and succeeds.
func TestClientBirdRestarts(t *testing.T) {
	f := newFakeBird(t, "", greetAlways, answerCaptured)
	f.hangUp = true
	c := newTestClient(t, f.path, time.Second)
	for i := range 3 {
		if err := c.Enable(context.Background(), "wg_vip4"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	want := []string{`1: enable "wg_vip4"`, `2: enable "wg_vip4"`, `3: enable "wg_vip4"`}
	if diff := cmp.Diff(want, f.commands()); diff != "" {
		t.Errorf("commands (-want +got):\n%s", diff)
	}
}

// TestClientBackoff: without a socket, attempts back off (doubling up to
// MaxBackoff) and calls in between fail at once; once BIRD is there, the
// next attempt connects and resets the backoff.
func TestClientBackoff(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.ctl")
	c := NewClient(path, Options{Timeout: time.Second, MinBackoff: 20 * time.Millisecond, MaxBackoff: 70 * time.Millisecond})
	defer c.Close()
	ctx := context.Background()
	dialErr := `enabling protocol "wg_vip4": connecting to bird: dial unix ` + path + ": connect: no such file or directory"
	if err := c.Enable(ctx, "wg_vip4"); errText(err) != dialErr {
		t.Fatalf("error %q, want %q", errText(err), dialErr)
	}
	// During the backoff the call fails at once with the same words, so
	// that a caller logging each distinct error logs BIRD's absence once.
	start := time.Now()
	err := c.Enable(ctx, "wg_vip4")
	if errText(err) != dialErr {
		t.Fatalf("error %q during the backoff, want %q", errText(err), dialErr)
	}
	if el := time.Since(start); el >= c.t.backoff {
		t.Fatalf("a call during the backoff took %v, want it to fail at once", el)
	}
	var backoffs []time.Duration
	for range 4 {
		backoffs = append(backoffs, c.t.backoff)
		time.Sleep(c.t.backoff + 5*time.Millisecond)
		if err := c.Enable(ctx, "wg_vip4"); errText(err) != dialErr {
			t.Fatalf("error %q, want %q", errText(err), dialErr)
		}
	}
	want := []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 70 * time.Millisecond, 70 * time.Millisecond}
	if diff := cmp.Diff(want, backoffs); diff != "" {
		t.Errorf("backoffs (-want +got):\n%s", diff)
	}
	newFakeBird(t, path, greetAlways, answerCaptured)
	time.Sleep(c.t.backoff + 5*time.Millisecond)
	if err := c.Enable(ctx, "wg_vip4"); err != nil {
		t.Fatalf("Enable once BIRD is there: %v", err)
	}
	if c.t.backoff != 0 {
		t.Errorf("backoff %v after a success, want 0", c.t.backoff)
	}
}

// TestClientConcurrent: calls from many goroutines take turns on one
// connection.
func TestClientConcurrent(t *testing.T) {
	f := newFakeBird(t, "", greetAlways, answerCaptured)
	c := newTestClient(t, f.path, 10*time.Second)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				var err error
				if i%2 == 0 {
					_, err = c.Protocols(context.Background())
				} else {
					err = c.Enable(context.Background(), "wg_vip4")
				}
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if n := f.connections(); n != 1 {
		t.Errorf("%d connections for 18 calls, want 1", n)
	}
}

func TestClientClosed(t *testing.T) {
	f := newFakeBird(t, "", greetAlways, answerCaptured)
	c := NewClient(f.path, Options{})
	if _, err := c.Protocols(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := c.Enable(context.Background(), "wg_vip4"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Enable after Close: %v, want net.ErrClosed", err)
	}
	c.Close() // twice is fine
}

// TestClientCloseWhileConnecting: Close does not wait for a hung connection
// attempt; the attempt closes its connection when it ends.
func TestClientCloseWhileConnecting(t *testing.T) {
	base := runtime.NumGoroutine()
	f := newFakeBird(t, "", func(int) []string { return nil }, answerCaptured)
	c := NewClient(f.path, Options{Timeout: 100 * time.Millisecond})
	if _, err := c.Protocols(context.Background()); err == nil {
		t.Fatal("Protocols succeeded against a hung BIRD")
	}
	c.Close()
	f.stop()
	if n := settleGoroutines(base); n > base {
		t.Errorf("%d goroutines at the end, baseline %d", n, base)
	}
}
