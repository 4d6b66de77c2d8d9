//go:build integration

package probe

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/health"
)

// The integration tests run a WireGuard device (wireguard-go, or kernel
// WireGuard with the build tag kernelwg) in a network namespace of its own,
// with a private /run/wireguard, and probe it from a copy of the test
// binary started inside the same namespaces. Names carry the prefix wgtE.
const (
	prefix = "wgtE"
	iface  = prefix + "0"
	port   = 51820
)

func skipOrFatal(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

func requirePrereqs(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFatal(t, "needs root for network namespaces")
	}
	for _, bin := range append([]string{"ip", "wg", "sh"}, backendTools...) {
		if _, err := exec.LookPath(bin); err != nil {
			skipOrFatal(t, "needs %s: %v", bin, err)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// removeLeftovers deletes namespaces (killing what runs in them) and
// directories with this test's prefix, from an earlier interrupted run.
func removeLeftovers(t *testing.T) {
	t.Helper()
	for _, line := range strings.Split(run(t, "ip", "netns", "list"), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], prefix+"-") {
			continue
		}
		killNetns(f[0])
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"-*"))
	for _, d := range dirs {
		os.RemoveAll(d)
	}
}

// killNetns kills the processes in ns by pid and deletes ns.
func killNetns(ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output()
	for _, f := range strings.Fields(string(out)) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	_ = exec.CommandContext(ctx, "ip", "netns", "del", ns).Run()
}

// server is a WireGuard device in a namespace of its own: a wireguard-go
// process (wggo_integration_test.go) or, with the build tag kernelwg, a
// kernel WireGuard link (kernel_integration_test.go).
type server struct {
	ns, dir string
	priv    PrivateKey
	backend // what the backend keeps of the device
}

// inNS returns a command run in the server's namespaces: its network
// namespace and a mount namespace where /run/wireguard is its directory.
func (s *server) inNS(ctx context.Context, args ...string) *exec.Cmd {
	a := append([]string{"netns", "exec", s.ns, "sh", "-c", `mount --bind "$0" /run/wireguard && exec "$@"`, s.dir}, args...)
	return exec.CommandContext(ctx, "ip", a...)
}

func (s *server) wg(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := s.inNS(ctx, append([]string{"wg"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("wg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func startServer(t *testing.T, priv PrivateKey) *server {
	t.Helper()
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	s := &server{ns: prefix + "-" + hex.EncodeToString(rnd[:]), dir: tempDir(t), priv: priv}
	run(t, "ip", "netns", "add", s.ns)
	t.Cleanup(func() { killNetns(s.ns) })
	run(t, "ip", "-n", s.ns, "link", "set", "lo", "up")

	startDevice(t, s)
	key := writeKey(t, s.dir, "server.key", priv.String())
	s.wg(t, "set", iface, "private-key", key, "listen-port", fmt.Sprint(port))
	s.wg(t, "set", iface, "peer", testPrivateKey("a client").PublicKey().String(), "allowed-ips", "10.9.0.2/32")
	return s
}

// addProbePeer runs the probe-key logic and adds its stanza to the server
// with wg addconf, as an operator would; it returns the probe's key file.
func (s *server) addProbePeer(t *testing.T) (keyFile string, pub PublicKey) {
	t.Helper()
	keyFile = filepath.Join(s.dir, "probe.key")
	stanza, err := GenerateKey(keyFile, false)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(s.dir, "probe.conf")
	if err := os.WriteFile(conf, []byte(stanza), 0o600); err != nil {
		t.Fatal(err)
	}
	s.wg(t, "addconf", iface, conf)
	k, err := LoadPrivateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return keyFile, k.PublicKey()
}

// helperRequest is what the parent asks the probing child to do.
type helperRequest struct {
	Config Config
	Read   bool // read the device through wgctrl first
}

// probeFromNS runs the probe in the server's namespaces, in a child copy of
// this test binary: it reads the device (when req.Read), then between runs,
// then it probes with that snapshot.
func probeFromNS(t *testing.T, s *server, req helperRequest, between func()) health.Check {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := s.inNS(ctx, os.Args[0], "-test.run=^TestIntegrationHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "WGTE_HELPER="+string(b))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	lines := bufio.NewScanner(stdout)
	next := func(want string) string {
		t.Helper()
		for lines.Scan() {
			if rest, ok := strings.CutPrefix(lines.Text(), want); ok {
				return rest
			}
		}
		t.Fatalf("helper ended without %q: %v\n%s", want, lines.Err(), stderr.String())
		return ""
	}
	if r := next("READ "); r != "ok" {
		t.Fatalf("helper reading %s: %s", iface, r)
	}
	if between != nil {
		between()
	}
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	var c health.Check
	if err := json.Unmarshal([]byte(next("RESULT ")), &c); err != nil {
		t.Fatal(err)
	}
	t.Logf("probe from %s: %+v", s.ns, c)
	return normal(c)
}

// TestIntegrationHelper is the child side of probeFromNS; it does nothing
// in a normal run.
func TestIntegrationHelper(t *testing.T) {
	env := os.Getenv("WGTE_HELPER")
	if env == "" {
		t.Skip("helper process only")
	}
	var req helperRequest
	if err := json.Unmarshal([]byte(env), &req); err != nil {
		t.Fatal(err)
	}
	if req.Config.Timeout == 0 {
		req.Config.Timeout = probeTimeout
	}
	p, err := NewProber(req.Config)
	if err != nil {
		t.Fatal(err)
	}
	var dev *wgtypes.Device
	if req.Read {
		c, err := wgctrl.New()
		if err != nil {
			fmt.Printf("READ %v\n", err)
			return
		}
		defer c.Close()
		d, err := c.Device(iface)
		if err != nil {
			fmt.Printf("READ %v\n", err)
			return
		}
		dev = d
	}
	fmt.Println("READ ok")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := json.Marshal(p.Probe(ctx, summarize(p, dev)))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("RESULT %s\n", b)
}

func TestIntegrationProbe(t *testing.T) {
	requirePrereqs(t)
	removeLeftovers(t)
	serverKey := testPrivateKey("integration server")
	rotated := testPrivateKey("integration server, rotated")
	endpoint := fmt.Sprintf("127.0.0.1:%d", port)
	timeout := fmt.Sprintf("no handshake response within %v", probeTimeout)

	t.Run("configured", func(t *testing.T) {
		s := startServer(t, serverKey)
		keyFile, pub := s.addProbePeer(t)
		got := probeFromNS(t, s, helperRequest{Config: Config{PrivateKeyFile: keyFile}, Read: true}, nil)
		want := health.Check{Name: "probe", OK: true, Detail: "handshake answered by " + endpoint + " in D"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Probe (-want +got):\n%s", diff)
		}
		// wireguard-go answered a peer without AllowedIPs, learned its
		// endpoint from the packet and counts no completed handshake.
		var line string
		for _, l := range strings.Split(s.wg(t, "show", iface, "dump"), "\n") {
			if strings.HasPrefix(l, pub.String()+"\t") {
				line = l
			}
		}
		f := strings.Split(line, "\t")
		if len(f) < 8 {
			t.Fatalf("probe peer missing from wg show dump: %q", line)
		}
		type peer struct{ EndpointHost, AllowedIPs, LatestHandshake string }
		gotPeer := peer{strings.Split(f[2], ":")[0], f[3], f[4]}
		if diff := cmp.Diff(peer{"127.0.0.1", "(none)", "0"}, gotPeer); diff != "" {
			t.Errorf("probe peer in wg show dump (-want +got):\n%s", diff)
		}
	})

	t.Run("configured, no snapshot", func(t *testing.T) {
		s := startServer(t, serverKey)
		keyFile, _ := s.addProbePeer(t)
		cfg := Config{Interface: iface, PrivateKeyFile: keyFile, ServerPublicKey: serverKey.PublicKey().String(), Endpoint: endpoint}
		got := probeFromNS(t, s, helperRequest{Config: cfg}, nil)
		want := health.Check{Name: "probe", OK: true, Detail: "handshake answered by " + endpoint + " in D"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Probe (-want +got):\n%s", diff)
		}
	})

	t.Run("probe peer absent", func(t *testing.T) {
		s := startServer(t, serverKey)
		keyFile, pub := s.addProbePeer(t)
		s.wg(t, "set", iface, "peer", pub.String(), "remove")
		got := probeFromNS(t, s, helperRequest{Config: Config{PrivateKeyFile: keyFile}, Read: true}, nil)
		want := health.Check{Name: "probe", Detail: "probe peer " + pub.String() + " is not configured on " + iface}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Probe (-want +got):\n%s", diff)
		}
	})

	t.Run("probe peer removed after the read", func(t *testing.T) {
		s := startServer(t, serverKey)
		keyFile, pub := s.addProbePeer(t)
		got := probeFromNS(t, s, helperRequest{Config: Config{PrivateKeyFile: keyFile}, Read: true}, func() {
			s.wg(t, "set", iface, "peer", pub.String(), "remove")
		})
		if diff := cmp.Diff(health.Check{Name: "probe", Detail: timeout}, got); diff != "" {
			t.Errorf("Probe (-want +got):\n%s", diff)
		}
	})

	t.Run("server key differs", func(t *testing.T) {
		s := startServer(t, serverKey)
		keyFile, _ := s.addProbePeer(t)
		cfg := Config{PrivateKeyFile: keyFile, ServerPublicKey: rotated.PublicKey().String()}
		got := probeFromNS(t, s, helperRequest{Config: cfg, Read: true}, nil)
		want := health.Check{Name: "probe", Detail: "server public key is " + serverKey.PublicKey().String() +
			", want " + rotated.PublicKey().String() + " (key rotated?)"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Probe (-want +got):\n%s", diff)
		}
	})

	t.Run("server key rotated", func(t *testing.T) {
		s := startServer(t, serverKey)
		keyFile, _ := s.addProbePeer(t)
		s.wg(t, "set", iface, "private-key", writeKey(t, s.dir, "rotated.key", rotated.String()))
		cfg := Config{PrivateKeyFile: keyFile, ServerPublicKey: serverKey.PublicKey().String()}
		got := probeFromNS(t, s, helperRequest{Config: cfg, Read: true}, nil)
		want := health.Check{Name: "probe", Detail: "server public key is " + rotated.PublicKey().String() +
			", want " + serverKey.PublicKey().String() + " (key rotated?)"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Probe (-want +got):\n%s", diff)
		}
	})

	t.Run("server key rotated, no snapshot", func(t *testing.T) {
		s := startServer(t, serverKey)
		keyFile, _ := s.addProbePeer(t)
		s.wg(t, "set", iface, "private-key", writeKey(t, s.dir, "rotated.key", rotated.String()))
		cfg := Config{Interface: iface, PrivateKeyFile: keyFile, ServerPublicKey: serverKey.PublicKey().String(), Endpoint: endpoint}
		got := probeFromNS(t, s, helperRequest{Config: cfg}, nil)
		if diff := cmp.Diff(health.Check{Name: "probe", Detail: timeout}, got); diff != "" {
			t.Errorf("Probe (-want +got):\n%s", diff)
		}
	})

	if backendHangs {
		t.Run("hung", func(t *testing.T) {
			s := startServer(t, serverKey)
			keyFile, _ := s.addProbePeer(t)
			got := probeFromNS(t, s, helperRequest{Config: Config{PrivateKeyFile: keyFile}, Read: true}, func() {
				s.hang(t)
			})
			if diff := cmp.Diff(health.Check{Name: "probe", Detail: timeout}, got); diff != "" {
				t.Errorf("Probe (-want +got):\n%s", diff)
			}
		})
	}

	gone := health.Check{Name: "probe", Hard: true, Detail: "nothing listens on " + endpoint + " (connection refused)"}
	// killed: wireguard-go killed, or the kernel device deleted.
	t.Run("killed", func(t *testing.T) {
		s := startServer(t, serverKey)
		keyFile, _ := s.addProbePeer(t)
		got := probeFromNS(t, s, helperRequest{Config: Config{PrivateKeyFile: keyFile}, Read: true}, func() {
			s.kill(t)
		})
		if diff := cmp.Diff(gone, got); diff != "" {
			t.Errorf("Probe (-want +got):\n%s", diff)
		}
	})

	t.Run("killed, no snapshot", func(t *testing.T) {
		s := startServer(t, serverKey)
		keyFile, _ := s.addProbePeer(t)
		s.kill(t)
		cfg := Config{Interface: iface, PrivateKeyFile: keyFile, ServerPublicKey: serverKey.PublicKey().String(), Endpoint: endpoint}
		got := probeFromNS(t, s, helperRequest{Config: cfg}, nil)
		if diff := cmp.Diff(gone, got); diff != "" {
			t.Errorf("Probe (-want +got):\n%s", diff)
		}
	})
}
