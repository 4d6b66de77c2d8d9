//go:build integration

package bird

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// birdConf announces nothing anywhere: no kernel protocol, no BGP.
// wg_vip4 starts disabled, as a server's VIP protocol should; wg_up starts
// enabled.
const birdConf = `router id 10.255.0.1;
log stderr all;
protocol device {}
protocol static wg_vip4 { disabled; ipv4; route 192.168.99.0/24 blackhole; }
protocol static wg_up { ipv4; route 192.168.98.0/24 blackhole; }
`

// birdProc is a bird run by a test in its own temp dir.
type birdProc struct {
	tb     testing.TB
	dir    string
	sock   string
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
}

func (p *birdProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.Write(b)
}

func (p *birdProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// requireBird skips unless root with bird installed; under CI=true a
// missing prerequisite fails instead.
func requireBird(tb testing.TB) {
	tb.Helper()
	missing := ""
	if os.Geteuid() != 0 {
		missing = "not root"
	} else if _, err := exec.LookPath("bird"); err != nil {
		missing = "bird not installed: " + err.Error()
	}
	if missing == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("CI=true but %s", missing)
	}
	tb.Skip(missing)
}

// birdVersion returns the version of the bird on PATH, which the tests run
// (CI runs them with Debian's 2.0.12 and again with /opt/bird-VERSION/sbin
// first on PATH): "BIRD version 2.0.12" on stderr.
func birdVersion(tb testing.TB) string {
	tb.Helper()
	out, err := exec.Command("bird", "--version").CombinedOutput()
	v, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "BIRD version ")
	if err != nil || !ok || v == "" {
		tb.Fatalf("bird --version: %q, %v", out, err)
	}
	return v
}

// startBird starts bird in the foreground on a socket in a new temp dir and
// waits for its greeting; t.Cleanup kills it.
func startBird(tb testing.TB) *birdProc {
	tb.Helper()
	return startBirdConf(tb, birdConf)
}

// startBirdConf is startBird with conf as BIRD's configuration.
func startBirdConf(tb testing.TB, conf string) *birdProc {
	tb.Helper()
	requireBird(tb)
	dir, err := os.MkdirTemp("", "wgb-bird-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "bird.conf"), []byte(conf), 0o644); err != nil {
		tb.Fatal(err)
	}
	p := &birdProc{tb: tb, dir: dir, sock: filepath.Join(dir, "bird.ctl")}
	p.start()
	tb.Cleanup(p.kill)
	return p
}

func (p *birdProc) start() {
	p.tb.Helper()
	p.cmd = exec.Command("bird", "-f", "-c", filepath.Join(p.dir, "bird.conf"), "-s", p.sock, "-P", filepath.Join(p.dir, "bird.pid"))
	p.cmd.Dir = p.dir
	p.cmd.Stdout = p
	p.cmd.Stderr = p
	if err := p.cmd.Start(); err != nil {
		p.tb.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := greets(p.sock)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			p.tb.Fatalf("bird did not greet on %s: %v\n%s", p.sock, err, p.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// greets connects to sock and checks BIRD's greeting.
func greets(sock string) error {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	b := make([]byte, 256)
	n, err := c.Read(b)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(string(b[:n]), "0001 ") {
		return fmt.Errorf("greeting %q", b[:n])
	}
	return nil
}

// kill kills bird (also when stopped) and waits for it.
func (p *birdProc) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Kill()
	p.cmd.Wait()
	p.cmd = nil
}

func (p *birdProc) signal(sig syscall.Signal) {
	p.tb.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.tb.Fatalf("sending %v to bird: %v", sig, err)
	}
}

func protocolState(t *testing.T, c *Client, name string) string {
	t.Helper()
	ps, err := c.Protocols(context.Background())
	if err != nil {
		t.Fatalf("Protocols: %v", err)
	}
	for _, p := range ps {
		if p.Name == name {
			return p.State
		}
	}
	t.Fatalf("protocol %s missing from %+v", name, ps)
	return ""
}

// settledState is the protocol's state once it is no longer on its way
// down (stop, flush), waiting up to 2 s.
func settledState(t *testing.T, c *Client, name string) string {
	t.Helper()
	got := protocolState(t, c, name)
	for deadline := time.Now().Add(2 * time.Second); (got == "stop" || got == "flush") && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		got = protocolState(t, c, name)
	}
	return got
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// settleFDs waits until at most want descriptors are open.
func settleFDs(t *testing.T, want int) int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := openFDs(t)
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A reply many times the read buffer (300 protocols: about 20 KB of
// `show protocols`, read 4 KiB at a time) is read whole, on the
// persistent connection, again and again.
func TestBirdLongReply(t *testing.T) {
	var conf strings.Builder
	conf.WriteString(birdConf)
	for i := range 300 {
		fmt.Fprintf(&conf, "protocol static long%03d { ipv4; route 10.%d.%d.0/24 blackhole; }\n", i, 100+i/256, i%256)
	}
	b := startBirdConf(t, conf.String())
	c := NewClient(b.sock, Options{})
	defer c.Close()
	for round := range 5 {
		ps, err := c.Protocols(context.Background())
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if len(ps) != 303 || ps[302].Name != "long299" || ps[302].State != "up" {
			t.Fatalf("round %d: %d protocols, the last %+v; want 303, the last long299 up", round, len(ps), ps[len(ps)-1])
		}
	}
}

func TestBirdRoundTrips(t *testing.T) {
	b := startBird(t)
	c := NewClient(b.sock, Options{})
	defer c.Close()
	ctx := context.Background()

	v, err := c.Status(ctx)
	if want := birdVersion(t); err != nil || v != want {
		t.Fatalf("Status = %q, %v, want %q (bird --version)", v, err, want)
	}
	t.Logf("bird %s", v)
	ps, err := c.Protocols(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Name+"/"+p.Proto+"/"+p.Table+"/"+p.State)
	}
	if got, want := strings.Join(names, " "), "device1/Device/---/up wg_vip4/Static/master4/down wg_up/Static/master4/up"; got != want {
		t.Errorf("protocols %q, want %q", got, want)
	}

	steps := []struct {
		name  string
		do    func() error
		state string
	}{
		{"enable", func() error { return c.Enable(ctx, "wg_vip4") }, "up"},
		{"enable again", func() error { return c.Enable(ctx, "wg_vip4") }, "up"},
		{"disable", func() error { return c.Disable(ctx, "wg_vip4") }, "down"},
		{"disable again", func() error { return c.Disable(ctx, "wg_vip4") }, "down"},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		// Right after disable, every version may show flush for a moment
		// (its routes are still going): not enabled, and down soon after.
		got := protocolState(t, c, "wg_vip4")
		if enabled := (Protocol{State: got}).Enabled(); enabled != (s.state == "up") {
			t.Errorf("after %s: wg_vip4 %s (Enabled %v), want %s", s.name, got, enabled, s.state)
		}
		if got = settledState(t, c, "wg_vip4"); got != s.state {
			t.Errorf("after %s: wg_vip4 %s, want %s", s.name, got, s.state)
		}
	}

	// Unknown names, and the keyword "all", match no protocol: the name is
	// sent quoted, as a pattern matching only itself.
	for _, tc := range []struct {
		err  error
		want string
	}{
		{c.Enable(ctx, "nosuch"), `enabling protocol "nosuch": bird replied 8003: No protocols match`},
		{c.Disable(ctx, "all"), `disabling protocol "all": bird replied 8003: No protocols match`},
		{c.Disable(ctx, "WG_UP"), `disabling protocol "WG_UP": bird replied 8003: No protocols match`},
	} {
		if got := errText(tc.err); got != tc.want {
			t.Errorf("error %q, want %q", got, tc.want)
		}
	}
	if got := protocolState(t, c, "wg_up"); got != "up" {
		t.Errorf("wg_up %s after `disable \"all\"`, want up", got)
	}

	r, err := c.Query(ctx, "show protocols all")
	if err != nil {
		t.Fatal(err)
	}
	if ps, err := ParseProtocols(r); err != nil || len(ps) != 3 {
		t.Errorf("ParseProtocols(show protocols all) = %d protocols, %v", len(ps), err)
	}
	if _, err := c.Query(ctx, "show protocols nosuch"); errText(err) != `bird command "show protocols nosuch": bird replied 9001: syntax error, unexpected CF_SYM_UNDEFINED, expecting END or CF_SYM_KNOWN or TEXT or ALL` {
		t.Errorf("Query(show protocols nosuch): %v", err)
	}
}

// TestBirdConfigureResets observes that `configure` (like `birdc
// configure`) puts every protocol back to its configured state, even with
// an unchanged file: a CLI-enabled protocol configured `disabled` goes down,
// a CLI-disabled one configured enabled comes up. Hence wgbird reconciles.
func TestBirdConfigureResets(t *testing.T) {
	b := startBird(t)
	c := NewClient(b.sock, Options{})
	defer c.Close()
	ctx := context.Background()
	if err := c.Enable(ctx, "wg_vip4"); err != nil {
		t.Fatal(err)
	}
	if err := c.Disable(ctx, "wg_up"); err != nil {
		t.Fatal(err)
	}
	if a, b := settledState(t, c, "wg_vip4"), settledState(t, c, "wg_up"); a != "up" || b != "down" {
		t.Fatalf("before configure: wg_vip4 %s, wg_up %s", a, b)
	}
	r, err := c.Query(ctx, "configure")
	if err != nil {
		t.Fatal(err)
	}
	// 0004 "Reconfiguration in progress" when protocols restart, 0003
	// "Reconfigured" otherwise.
	t.Logf("configure: %04d %q", r.Code, r.Lines[len(r.Lines)-1].Text)
	if r.Code != 3 && r.Code != 4 {
		t.Errorf("configure replied %+v", r)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		a, b := protocolState(t, c, "wg_vip4"), protocolState(t, c, "wg_up")
		if a == "down" && b == "up" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after configure: wg_vip4 %s (want down), wg_up %s (want up)", a, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBirdRestrict: after `restrict`, reads work and changes get 8007.
// The restriction belongs to the connection.
func TestBirdRestrict(t *testing.T) {
	b := startBird(t)
	c := NewClient(b.sock, Options{})
	defer c.Close()
	ctx := context.Background()
	r, err := c.Query(ctx, "restrict")
	if err != nil || r.Code != 16 || r.Lines[0].Text != "Access restricted" {
		t.Fatalf("restrict: %+v, %v", r, err)
	}
	if _, err := c.Protocols(ctx); err != nil {
		t.Errorf("Protocols when restricted: %v", err)
	}
	want := `disabling protocol "wg_vip4": bird replied 8007: Access denied`
	err = c.Disable(ctx, "wg_vip4")
	if errText(err) != want {
		t.Errorf("Disable when restricted: %q, want %q", errText(err), want)
	}
	var re *ReplyError
	if !errors.As(err, &re) || re.Code != 8007 {
		t.Errorf("error %v is not a *ReplyError 8007", err)
	}
	c2 := NewClient(b.sock, Options{})
	defer c2.Close()
	if err := c2.Disable(ctx, "wg_vip4"); err != nil {
		t.Errorf("Disable on another connection: %v", err)
	}
}

// TestBirdRestart: BIRD killed and started again. Calls fail while it is
// gone and work once it is back; BIRD has forgotten the CLI enable.
func TestBirdRestart(t *testing.T) {
	b := startBird(t)
	c := NewClient(b.sock, Options{})
	defer c.Close()
	ctx := context.Background()
	if err := c.Enable(ctx, "wg_vip4"); err != nil {
		t.Fatal(err)
	}

	// Restarted while the client is idle: the next call reconnects at once.
	b.kill()
	b.start()
	if got := protocolState(t, c, "wg_vip4"); got != "down" {
		t.Errorf("wg_vip4 %s after a restart, want down (the CLI enable is forgotten)", got)
	}

	// Calls while BIRD is gone fail with the reason, then recover.
	if err := c.Enable(ctx, "wg_vip4"); err != nil {
		t.Fatal(err)
	}
	b.kill()
	err := c.Enable(ctx, "wg_vip4")
	t.Logf("while bird is gone: %v", err)
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Enable while bird is gone: %v, want connection refused (the socket file stays)", err)
	}
	b.start()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := c.Enable(ctx, "wg_vip4")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reconnection after the restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := protocolState(t, c, "wg_vip4"); got != "up" {
		t.Errorf("wg_vip4 %s, want up", got)
	}
}

// TestBirdStopped: BIRD SIGSTOPped for longer than the timeout. Calls fail
// within their deadline, goroutines and descriptors stay bounded, and after
// SIGCONT the client works again and returns to its baseline.
func TestBirdStopped(t *testing.T) {
	const timeout = 300 * time.Millisecond
	b := startBird(t)
	c := NewClient(b.sock, Options{Timeout: timeout})
	defer c.Close()
	ctx := context.Background()
	if err := c.Enable(ctx, "wg_vip4"); err != nil {
		t.Fatal(err)
	}
	baseG, baseFD := runtime.NumGoroutine(), openFDs(t)
	t.Logf("baseline: %d goroutines, %d fds", baseG, baseFD)

	b.signal(syscall.SIGSTOP)
	start := time.Now()
	// The first call is sent on the open connection and times out there;
	// BIRD will find it in the socket when it resumes.
	err := c.Disable(ctx, "wg_vip4")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Disable while stopped: %v, want a deadline error", err)
	}
	t.Logf("while stopped: %v", err)
	maxG, maxFD := 0, 0
	for i := 0; time.Since(start) < 4*timeout || i < 5; i++ {
		callStart := time.Now()
		_, err = c.Protocols(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("call %d while stopped: %v, want a deadline error", i, err)
		}
		if d := time.Since(callStart); d > timeout+time.Second {
			t.Errorf("call %d took %v with a timeout of %v", i, d, timeout)
		}
		maxG = max(maxG, settleGoroutines(baseG+1))
		maxFD = max(maxFD, openFDs(t))
	}
	t.Logf("while stopped: at most %d goroutines, %d fds; last error: %v", maxG, maxFD, err)
	// One connection attempt in flight: its goroutine and its socket, in
	// place of the closed connection.
	if maxG > baseG+1 || maxFD > baseFD+1 {
		t.Errorf("while stopped: %d goroutines, %d fds; baseline %d, %d", maxG, maxFD, baseG, baseFD)
	}

	t.Logf("stopped for %v", time.Since(start).Round(time.Millisecond))
	b.signal(syscall.SIGCONT)
	resumed := time.Now()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := c.Protocols(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after SIGCONT: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("working again %v after SIGCONT", time.Since(resumed).Round(time.Millisecond))
	t.Logf("after SIGCONT: wg_vip4 %s", protocolState(t, c, "wg_vip4"))
	if err := c.Enable(ctx, "wg_vip4"); err != nil {
		t.Fatal(err)
	}
	if got := protocolState(t, c, "wg_vip4"); got != "up" {
		t.Errorf("wg_vip4 %s, want up", got)
	}
	if g, fd := settleGoroutines(baseG), settleFDs(t, baseFD); g > baseG || fd > baseFD {
		t.Errorf("after SIGCONT: %d goroutines, %d fds; baseline %d, %d", g, fd, baseG, baseFD)
	}
}

// BenchmarkRoundTrip is one `show protocols` on a persistent connection.
func BenchmarkRoundTrip(b *testing.B) {
	bp := startBird(b)
	c := NewClient(bp.sock, Options{})
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Protocols(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Protocols(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
