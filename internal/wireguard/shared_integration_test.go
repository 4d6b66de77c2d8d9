//go:build integration

package wireguard

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/health"
)

// These tests run against wireguard-go (integration_test.go) or, with the
// build tag kernelwg as well, against kernel WireGuard
// (kernel_integration_test.go, run in a qemu guest by make kernel-test).
// Each backend file defines wgDevice, startDevice, deviceType and
// testNetns; what is here runs against both.
//
// How these tests get a private /run/wireguard.
//
// wgctrl and wg find userspace devices only by their UAPI sockets in the
// fixed directory /var/run/wireguard (/run/wireguard on Debian), which is
// shared by every process on the machine. The Reader reads from goroutines
// on arbitrary OS threads, so giving one locked thread its own mount
// namespace (unshare(CLONE_NEWNS)) would not do: the whole test process has
// to see the private directory. The simplest reliable way is to start the
// process in it: when run as root, TestMain re-executes the test binary
// once in a new mount namespace (SysProcAttr.Unshareflags; Go makes all
// mounts in it private, so nothing propagates back to the host), and the
// child mounts a fresh tmpfs on /run/wireguard before running the tests.
// Everything the tests start (wireguard-go, wg) inherits that view, and
// the tmpfs with any stale socket vanishes with the process, even if it
// crashes.
//
// Each wireguard-go runs in a new, anonymous network namespace of its own
// (SysProcAttr.Cloneflags CLONE_NEWNET), so its TUN device and UDP port
// never collide with anything else and disappear with the process; it is
// started with Pdeathsig SIGKILL and killed in t.Cleanup. Nothing named
// is created on the host, so there are no leftovers to delete at start
// except stale sockets with our prefix should the private mount ever be
// missing. Device names carry the prefix wgtB.
const privateRunEnv = "WGTB_PRIVATE_RUN_WIREGUARD"

const socketDir = "/var/run/wireguard"

func TestMain(m *testing.M) {
	if os.Geteuid() == 0 && os.Getenv(privateRunEnv) == "" {
		os.Exit(reexecInMountNamespace())
	}
	if os.Getenv(privateRunEnv) != "" {
		if err := mountPrivateRun(); err != nil {
			fmt.Fprintf(os.Stderr, "wireguard integration tests: %v\n", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

func reexecInMountNamespace() int {
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), privateRunEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Unshareflags: syscall.CLONE_NEWNS | testNetns,
		Pdeathsig:    syscall.SIGKILL,
	}
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		if ee.ExitCode() >= 0 {
			return ee.ExitCode()
		}
		fmt.Fprintf(os.Stderr, "test binary in private mount namespace: %v\n", err)
		return 1
	case err != nil:
		fmt.Fprintf(os.Stderr, "re-running test binary in a private mount namespace: %v\n", err)
		return 1
	}
	return 0
}

func mountPrivateRun() error {
	// /run/wireguard is created on the host if missing (it is where
	// wireguard-go puts its sockets anyway); only the tmpfs is private.
	if err := os.MkdirAll(socketDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", socketDir, err)
	}
	if err := unix.Mount("tmpfs", socketDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0700"); err != nil {
		return fmt.Errorf("mounting a private tmpfs on %s: %w", socketDir, err)
	}
	return nil
}

// requireWg skips the test, or fails it when CI=true, unless it runs as
// root in the private namespaces set up by TestMain with wg installed. It
// returns the function that reports a missing prerequisite, and wg's path.
func requireWg(tb testing.TB) (missing func(string, ...any), wg string) {
	tb.Helper()
	missing = tb.Skipf
	if os.Getenv("CI") == "true" {
		missing = tb.Fatalf
	}
	if os.Geteuid() != 0 {
		missing("needs root (network and mount namespaces)")
	}
	if os.Getenv(privateRunEnv) == "" {
		tb.Fatalf("not running in the private namespaces set up by TestMain")
	}
	wg, err := exec.LookPath("wg")
	if err != nil {
		missing("wg not installed: %v", err)
	}
	return missing, wg
}

// wgRun runs wg with args, feeding stdin (for "/dev/stdin" arguments).
func (d *wgDevice) wgRun(tb testing.TB, stdin string, args ...string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.wg, args...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("wg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newKey(tb testing.TB) wgtypes.Key {
	tb.Helper()
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		tb.Fatalf("generating a key: %v", err)
	}
	return k
}

func newTestReader(tb testing.TB) *Reader {
	tb.Helper()
	r, err := NewReader()
	if err != nil {
		tb.Fatalf("NewReader: %v", err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// read reads the summary the WireGuard check judges; nil on an error.
func read(t *testing.T, r *Reader, name string, timeout time.Duration) (*Summary, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	s, err := r.Summary(ctx, name)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

func TestDeviceHealth(t *testing.T) {
	peer := newKey(t).PublicKey().String()
	withPeer := []string{"peer", peer, "allowed-ips", "10.9.0.2/32"}
	key := []string{"private-key", "/dev/stdin"} // wgRun feeds the key on stdin
	port := func(p string) []string { return []string{"listen-port", p} }
	args := func(parts ...[]string) (all []string) {
		for _, p := range parts {
			all = append(all, p...)
		}
		return all
	}
	tests := []struct {
		name   string
		dev    string
		wgArgs []string // after "wg set DEV"
		spec   Spec     // Interface is filled in
		want   health.Check
	}{
		{
			name:   "healthy",
			dev:    "wgtBok",
			wgArgs: args(key, port("51820"), withPeer),
			spec:   Spec{ListenPort: 51820, MinPeers: 1},
			want:   health.Check{Name: "wireguard", OK: true, Detail: "listen 51820, 1 peer, no handshake yet"},
		},
		{
			name:   "no private key",
			dev:    "wgtBnokey",
			wgArgs: args(port("51820"), withPeer),
			spec:   Spec{ListenPort: 51820, MinPeers: 1},
			want:   health.Check{Name: "wireguard", Detail: "private key not set"},
		},
		{
			name:   "no peers",
			dev:    "wgtBnopeer",
			wgArgs: args(key, port("51820")),
			spec:   Spec{ListenPort: 51820, MinPeers: 1},
			want:   health.Check{Name: "wireguard", Detail: "0 peers, want at least 1"},
		},
		{
			name:   "wrong port",
			dev:    "wgtBport",
			wgArgs: args(key, port("51821"), withPeer),
			spec:   Spec{ListenPort: 51820, MinPeers: 1},
			want:   health.Check{Name: "wireguard", Detail: "listen port 51821, want 51820"},
		},
		{
			// An unconfigured wireguard-go listens on a random port, so
			// this spec accepts any.
			name: "unconfigured",
			dev:  "wgtBempty",
			spec: Spec{MinPeers: 1},
			want: health.Check{Name: "wireguard", Detail: "private key not set; 0 peers, want at least 1"},
		},
	}
	r := newTestReader(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := startDevice(t, tt.dev)
			k := newKey(t)
			if tt.wgArgs != nil {
				d.wgRun(t, k.String()+"\n", append([]string{"set", tt.dev}, tt.wgArgs...)...)
			}
			sum, err := read(t, r, tt.dev, 2*time.Second)
			if err != nil {
				t.Fatalf("Summary(%s): %v", tt.dev, err)
			}
			// wgctrl reads the same device the same way.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			dev, err := r.Device(ctx, tt.dev)
			cancel()
			if err != nil {
				t.Fatalf("Device(%s): %v", tt.dev, err)
			}
			if dev.Name != tt.dev || dev.Type != deviceType {
				t.Errorf("Device(%s) = name %q type %v, want name %q type %v", tt.dev, dev.Name, dev.Type, tt.dev, deviceType)
			}
			if diff := cmp.Diff(FromWgctrl(dev, nil), *sum); diff != "" {
				t.Errorf("Summary and wgctrl's read disagree (-wgctrl +summary):\n%s", diff)
			}
			spec := tt.spec
			spec.Interface = tt.dev
			got := Evaluate(spec, sum, nil, time.Now())
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Evaluate (-want +got):\n%s", diff)
			}
			if got.OK && (dev.PrivateKey != k || sum.PublicKey != k.PublicKey()) {
				t.Errorf("keys read back differ from the one set")
			}
		})
	}
}

// configureHealthy gives d a key, listen port 51820 and one peer.
func configureHealthy(t *testing.T, d *wgDevice) {
	t.Helper()
	d.wgRun(t, newKey(t).String()+"\n", "set", d.name, "private-key", "/dev/stdin", "listen-port", "51820",
		"peer", newKey(t).PublicKey().String(), "allowed-ips", "10.9.0.2/32")
}
