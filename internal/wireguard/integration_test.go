//go:build integration && !kernelwg

package wireguard

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

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/health"
)

// The wireguard-go backend of the integration tests: each device is a
// wireguard-go process in a network namespace of its own (see
// shared_integration_test.go), and the tests below cover what only a
// userspace implementation does: a hung process, a stale UAPI socket.

// deviceType is the wgtypes.DeviceType the tests expect to read.
const deviceType = wgtypes.Userspace

// testNetns is what TestMain unshares besides the mount namespace: nothing,
// each wireguard-go gets a network namespace of its own.
const testNetns = 0

// prerequisites skips the test, or fails it when CI=true, unless it runs
// as root in the private mount namespace with wireguard-go and wg
// installed. It returns the paths of wireguard-go and wg.
func prerequisites(tb testing.TB) (wireguardGo, wg string) {
	tb.Helper()
	missing, wg := requireWg(tb)
	wireguardGo, err := exec.LookPath("wireguard-go")
	if err != nil {
		missing("wireguard-go not installed: %v", err)
	}
	removeLeftovers(tb)
	return wireguardGo, wg
}

// removeLeftovers removes stale sockets of devices with our prefix. In the
// private tmpfs there are none unless a test of this run left one.
func removeLeftovers(tb testing.TB) {
	matches, _ := filepath.Glob(filepath.Join(socketDir, "wgtB*.sock"))
	for _, m := range matches {
		if _, err := net.Dial("unix", m); err != nil {
			os.Remove(m)
		}
	}
}

// lockedBuffer collects a process's output for failure messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// wgDevice is a wireguard-go process serving one device.
type wgDevice struct {
	name string
	wg   string // path of wg(8)
	cmd  *exec.Cmd
	out  *lockedBuffer
	once sync.Once
	err  error
}

// startDevice starts wireguard-go for name in a network namespace of its
// own and waits until its UAPI socket answers.
func startDevice(tb testing.TB, name string) *wgDevice {
	tb.Helper()
	wireguardGo, wg := prerequisites(tb)
	d := &wgDevice{name: name, wg: wg, out: &lockedBuffer{}}
	d.cmd = exec.Command(wireguardGo, "-f", name)
	d.cmd.Env = append(os.Environ(), "LOG_LEVEL=error")
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	d.cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET,
		Pdeathsig:  syscall.SIGKILL,
	}
	if err := d.cmd.Start(); err != nil {
		tb.Fatalf("starting wireguard-go %s: %v", name, err)
	}
	tb.Cleanup(func() {
		d.kill()
		os.Remove(d.socket())
		if tb.Failed() {
			tb.Logf("wireguard-go %s output:\n%s", name, d.out)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("unix", d.socket(), time.Second)
		if err == nil {
			c.Close()
			return d
		}
		if time.Now().After(deadline) {
			tb.Fatalf("wireguard-go %s: UAPI socket not answering after 10s: %v\n%s", name, err, d.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *wgDevice) socket() string { return filepath.Join(socketDir, d.name+".sock") }

// kill kills wireguard-go (stopped or not) and reaps it.
func (d *wgDevice) kill() {
	d.once.Do(func() {
		d.cmd.Process.Kill()
		d.err = d.cmd.Wait()
	})
}

func (d *wgDevice) signal(tb testing.TB, sig syscall.Signal) {
	tb.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		tb.Fatalf("sending %v to wireguard-go %s: %v", sig, d.name, err)
	}
}

// waitStopped waits until every thread of wireguard-go is stopped: signal
// delivery is asynchronous, and a read right after kill(SIGSTOP) may still
// be answered.
func (d *wgDevice) waitStopped(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !allStopped(d.cmd.Process.Pid) {
		if time.Now().After(deadline) {
			tb.Fatalf("wireguard-go %s not stopped 5s after SIGSTOP", d.name)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func allStopped(pid int) bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			return false
		}
		// The state follows the parenthesised command name: "pid (comm) T ...".
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false
		}
	}
	return true
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("counting open fds: %v", err)
	}
	return len(ents)
}

// hangDevice stops d, reads it once to leave a read in flight, checks what
// the reader reports meanwhile and returns the baseline goroutine and fd
// counts from before the hang.
func hangDevice(t *testing.T, r *Reader, d *wgDevice, other string) (goroutines, fds int) {
	t.Helper()
	spec := Spec{Interface: d.name, ListenPort: 51820, MinPeers: 1}
	// Both devices read once first: the Reader keeps a connection to
	// each, part of the baseline.
	for _, name := range []string{d.name, other} {
		if name == "" {
			continue
		}
		if _, err := read(t, r, name, 2*time.Second); err != nil {
			t.Fatalf("Device(%s) before SIGSTOP: %v", name, err)
		}
	}
	goroutines, fds = runtime.NumGoroutine(), openFDs(t)

	d.signal(t, syscall.SIGSTOP)
	d.waitStopped(t)
	const deadline = 250 * time.Millisecond
	start := time.Now()
	dev, err := read(t, r, d.name, deadline)
	elapsed := time.Since(start)
	t.Logf("read of the stopped device returned after %v: %v", elapsed, err)
	if dev != nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Device(stopped %s) = %v, %v; want an error wrapping context.DeadlineExceeded", d.name, dev, err)
	}
	// Generous: this is about returning at all, not about speed.
	if elapsed > deadline+2*time.Second {
		t.Errorf("Device(stopped %s) returned after %v, want about %v", d.name, elapsed, deadline)
	}
	// The exact figure depends on scheduling (it is measured from the
	// start of Device to the deadline); the unit tests pin the wording.
	c := Evaluate(spec, dev, err, time.Now())
	if c.OK || c.Hard || !strings.HasPrefix(c.Detail, "wireguard-go not answering within ") {
		t.Errorf("Evaluate(stopped) = %+v, want a soft failure \"wireguard-go not answering within ...\"", c)
	}
	t.Logf("Evaluate(stopped): %s", c.Detail)

	// Later reads share the hung one: it has waited longer than they
	// allow, so they fail at once, and no second read starts.
	for range 3 {
		start := time.Now()
		_, err = read(t, r, d.name, deadline)
		var te *TimeoutError
		if !errors.As(err, &te) || te.Pending < deadline {
			t.Fatalf("Device(%s) with a read in flight: error = %v, want a *TimeoutError pending at least %v", d.name, err, deadline)
		}
		if el := time.Since(start); el > deadline/2 {
			t.Errorf("Device(%s) joining a read pending longer than its deadline took %v, want it to fail at once", d.name, el)
		}
	}
	c = Evaluate(spec, nil, err, time.Now())
	if c.OK || c.Hard || !strings.HasPrefix(c.Detail, "wireguard-go not answering within ") {
		t.Errorf("Evaluate(shared hung read) = %+v, want a soft failure \"wireguard-go not answering within ...\"", c)
	}
	if n := r.inFlightCount(); n != 1 {
		t.Errorf("reads in flight = %d, want 1", n)
	}
	if n := runtime.NumGoroutine(); n > goroutines+1 {
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines with a hung read = %d, want at most %d\n%s", n, goroutines+1, buf[:runtime.Stack(buf, true)])
	}
	if n := openFDs(t); n > fds+1 {
		t.Errorf("open fds with a hung read = %d, want at most %d", n, fds+1)
	}

	// Another device is read normally meanwhile.
	if other != "" {
		if _, err := read(t, r, other, 2*time.Second); err != nil {
			t.Errorf("Device(%s) while %s hangs: %v", other, d.name, err)
		}
	}
	return goroutines, fds
}

func waitBaseline(t *testing.T, r *Reader, goroutines, fds int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.inFlightCount() != 0 || runtime.NumGoroutine() > goroutines || openFDs(t) > fds {
		if time.Now().After(deadline) {
			t.Fatalf("after the hung read ended: %d in flight, %d goroutines (baseline %d), %d fds (baseline %d)",
				r.inFlightCount(), runtime.NumGoroutine(), goroutines, openFDs(t), fds)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDeviceStopped(t *testing.T) {
	r := newTestReader(t)
	d := startDevice(t, "wgtBstop")
	configureHealthy(t, d)
	other := startDevice(t, "wgtBother")
	configureHealthy(t, other)

	goroutines, fds := hangDevice(t, r, d, other.name)

	d.signal(t, syscall.SIGCONT)
	waitBaseline(t, r, goroutines, fds)
	dev, err := read(t, r, d.name, 2*time.Second)
	if c := Evaluate(Spec{Interface: d.name, ListenPort: 51820, MinPeers: 1}, dev, err, time.Now()); !c.OK {
		t.Errorf("Evaluate after SIGCONT = %+v, want OK", c)
	}
}

func TestDeviceStoppedThenKilled(t *testing.T) {
	r := newTestReader(t)
	d := startDevice(t, "wgtBstopkill")
	configureHealthy(t, d)

	goroutines, fds := hangDevice(t, r, d, "")

	d.kill()
	waitBaseline(t, r, goroutines, fds)
	_, err := read(t, r, d.name, 2*time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Device(killed %s) error = %v, want ECONNREFUSED", d.name, err)
	}
}

func TestDeviceGone(t *testing.T) {
	r := newTestReader(t)
	d := startDevice(t, "wgtBkill")
	configureHealthy(t, d)
	spec := Spec{Interface: d.name, ListenPort: 51820, MinPeers: 1}

	d.kill()
	if _, err := os.Stat(d.socket()); err != nil {
		t.Fatalf("expected wireguard-go to leave a stale socket: %v", err)
	}
	dev, err := read(t, r, d.name, 2*time.Second)
	t.Logf("killed: %T: %v", errors.Unwrap(err), err)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Device(killed %s) error = %v, want ECONNREFUSED", d.name, err)
	}
	want := health.Check{Name: "wireguard", Hard: true,
		Detail: "device wgtBkill gone: its UAPI socket refuses connections (wireguard-go not running)"}
	if diff := cmp.Diff(want, Evaluate(spec, dev, err, time.Now())); diff != "" {
		t.Errorf("Evaluate(killed) (-want +got):\n%s", diff)
	}

	// Once the stale socket is gone too, the device is simply missing.
	if err := os.Remove(d.socket()); err != nil {
		t.Fatalf("removing stale socket: %v", err)
	}
	for _, name := range []string{d.name, "wgtBnever"} {
		dev, err = read(t, r, name, 2*time.Second)
		t.Logf("missing: %T: %v", errors.Unwrap(err), err)
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Device(missing %s) error = %v, want os.ErrNotExist", name, err)
		}
		want = health.Check{Name: "wireguard", Hard: true, Detail: "device " + name + " not found"}
		if diff := cmp.Diff(want, Evaluate(Spec{Interface: name, MinPeers: 1}, dev, err, time.Now())); diff != "" {
			t.Errorf("Evaluate(missing) (-want +got):\n%s", diff)
		}
	}
}

// BenchmarkDevice1kPeers and BenchmarkDevice10kPeers read and evaluate a
// real wireguard-go device as the service loop does (Reader.Summary over
// UAPI): the time includes wireguard-go's own, to write its answer.
func BenchmarkDevice1kPeers(b *testing.B)  { benchDevice(b, "wgtBbench1k", 1000) }
func BenchmarkDevice10kPeers(b *testing.B) { benchDevice(b, "wgtBbench", 10000) }

func benchDevice(b *testing.B, name string, peers int) {
	d := startDevice(b, name)
	var conf strings.Builder
	fmt.Fprintf(&conf, "[Interface]\nPrivateKey = %s\nListenPort = 51820\n", newKey(b))
	for i := range peers {
		fmt.Fprintf(&conf, "\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.%d.%d.%d/32\n",
			newKey(b).PublicKey(), 100+i>>16, i>>8&0xff, i&0xff)
	}
	d.wgRun(b, conf.String(), "setconf", d.name, "/dev/stdin")

	r := newTestReader(b)
	spec := Spec{Interface: d.name, ListenPort: 51820, MinPeers: 1}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		s, err := r.Summary(ctx, d.name)
		cancel()
		if err != nil {
			b.Fatalf("Summary: %v", err)
		}
		if s.Peers != peers {
			b.Fatalf("device has %d peers, want %d", s.Peers, peers)
		}
		if c := Evaluate(spec, &s, nil, time.Now()); !c.OK {
			b.Fatalf("Evaluate = %+v, want OK", c)
		}
	}
}

// BenchmarkAliveDevice is the liveness check against a real wireguard-go:
// an empty UAPI set.
func BenchmarkAliveDevice(b *testing.B) {
	d := startDevice(b, "wgtBalive")
	d.wgRun(b, newKey(b).String()+"\n", "set", d.name, "private-key", "/dev/stdin", "listen-port", "51820")
	r := newTestReader(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := r.Alive(ctx, d.name)
		cancel()
		if err != nil {
			b.Fatalf("Alive: %v", err)
		}
	}
}
