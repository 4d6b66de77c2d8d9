package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/config"
)

const probeServiceConfig = `[bird]
socket = %q

[control]
socket = %q

[[service]]
interface = "wg0"
vips = ["192.168.20.1/24"]
protocols = ["wg_vip4"]
`

// TestProbeKey: the key file is private and the printed lines, pasted as
// told, make a valid wgbird.toml and a [Peer] with the key's public key.
func TestProbeKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "probe.key")
	code, stdout, stderr := runMain("probe-key", path)
	if code != ExitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := st.Mode().Perm(); m != 0o600 {
		t.Errorf("key file mode %04o, want 0600", m)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	key, err := wgtypes.ParseKey(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("key file: %v", err)
	}

	wantPeer := "[Peer]\nPublicKey = " + key.PublicKey().String() + "\n"
	if !strings.Contains(stdout, wantPeer) {
		t.Errorf("output lacks %q:\n%s", wantPeer, stdout)
	}
	if strings.Contains(stdout, "AllowedIPs =") {
		t.Errorf("output has AllowedIPs:\n%s", stdout)
	}

	// Paste what follows "[service.probe]" below a service.
	i := strings.Index(stdout, "  [service.probe]\n")
	if i < 0 {
		t.Fatalf("output lacks [service.probe]:\n%s", stdout)
	}
	doc := fmt.Sprintf(probeServiceConfig, "/run/bird/bird.ctl", "/run/wgbird/wgbird.sock") + "\n" + stdout[i:]
	cfg, err := config.Parse("wgbird.toml", []byte(doc))
	if err != nil {
		t.Fatalf("pasted config: %v\n%s", err, doc)
	}
	want := &config.Probe{PrivateKeyFile: path, Timeout: 250 * time.Millisecond}
	if diff := cmp.Diff(want, cfg.Services[0].Probe); diff != "" {
		t.Errorf("pasted [service.probe] (-want +got):\n%s", diff)
	}

	// The prober run would create uses that key.
	pr, err := newProber(cfg.Services[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := pr.PublicKey(); got != key.PublicKey() {
		t.Errorf("prober key %s, want %s", got, key.PublicKey())
	}

	// An existing key is kept without --force, replaced with it.
	code, stdout, stderr = runMain("probe-key", path)
	if wantErr := "wgbird probe-key: " + path + " exists: a server may already list its public key (use --force to replace it)\n"; code != ExitFailure || stdout != "" || stderr != wantErr {
		t.Errorf("second run: exit %d, stdout %q, stderr %q; want exit 1 and %q", code, stdout, stderr, wantErr)
	}
	if b2, _ := os.ReadFile(path); string(b2) != string(b) {
		t.Error("the key changed without --force")
	}
	if code, _, stderr := runMain("probe-key", "--force", path); code != ExitOK {
		t.Fatalf("--force: exit %d, %s", code, stderr)
	}
	if b2, _ := os.ReadFile(path); string(b2) == string(b) {
		t.Error("--force kept the old key")
	}
}

func TestProbeKeyRelativePath(t *testing.T) {
	t.Chdir(t.TempDir())
	code, stdout, stderr := runMain("probe-key", "probe.key")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	abs, err := filepath.Abs("probe.key")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("private_key_file = %q\n", abs); !strings.Contains(stdout, want) {
		t.Errorf("output lacks %q:\n%s", want, stdout)
	}
}

func TestProbeKeyUsage(t *testing.T) {
	for _, args := range [][]string{{"probe-key"}, {"probe-key", "a", "b"}} {
		code, stdout, stderr := runMain(args...)
		want := "wgbird probe-key: want one argument, the path of the key file, such as /etc/wgbird/probe.key\n" +
			"usage: wgbird probe-key [--force] [--interface DEVICE] PATH (wgbird help probe-key)\n"
		if code != ExitConfig || stdout != "" || stderr != want {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", args, code, stdout, stderr, want)
		}
	}
}

// TestRunProbeKeyUnusable: run refuses to start, exit 2, when a probe's
// key file is missing or readable by others, naming the file.
func TestRunProbeKeyUnusable(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.key")
	if code, _, stderr := runMain("probe-key", open); code != ExitOK {
		t.Fatal(stderr)
	}
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.key")
	tests := []struct {
		key  string
		want string
	}{
		{missing, `wgbird run: service "wg0": creating probe: reading probe key: open ` + missing + ": no such file or directory\n"},
		{open, `wgbird run: service "wg0": creating probe: reading probe key: ` + open + " has mode 0644, want 0600 (chmod 600 " + open + ")\n"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.key), func(t *testing.T) {
			conf := filepath.Join(dir, "wgbird.toml")
			doc := fmt.Sprintf(probeServiceConfig, filepath.Join(dir, "bird.ctl"), filepath.Join(dir, "wgbird.sock")) +
				fmt.Sprintf("[service.probe]\nprivate_key_file = %q\n", tt.key)
			if err := os.WriteFile(conf, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runMain("run", "--config", conf)
			if code != ExitConfig || stdout != "" || stderr != tt.want {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and %q", code, stdout, stderr, tt.want)
			}
		})
	}
}

// TestProbeKeyServerKey: with the device readable, the printed table sets
// server_public_key to its public key, and the pasted config expects it;
// without, the line is commented out and says why.
func TestProbeKeyServerKey(t *testing.T) {
	server, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	o := &probeKeyOpts{iface: "wg7", readDevice: func(_ context.Context, name string) (*wgtypes.Device, error) {
		asked = append(asked, name)
		return &wgtypes.Device{Name: name, PrivateKey: server, PublicKey: server.PublicKey()}, nil
	}}
	var stdout strings.Builder
	path := filepath.Join(t.TempDir(), "probe.key")
	if err := probeKey(context.Background(), &Env{Stdout: &stdout, Stderr: io.Discard}, o, []string{path}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"wg7"}, asked); diff != "" {
		t.Errorf("devices read (-want +got):\n%s", diff)
	}
	out := stdout.String()
	i := strings.Index(out, "  [service.probe]\n")
	if i < 0 {
		t.Fatalf("output lacks [service.probe]:\n%s", out)
	}
	doc := fmt.Sprintf(probeServiceConfig, "/run/bird/bird.ctl", "/run/wgbird/wgbird.sock") + "\n" + out[i:]
	cfg, err := config.Parse("wgbird.toml", []byte(doc))
	if err != nil {
		t.Fatalf("pasted config: %v\n%s", err, doc)
	}
	if got, want := cfg.Services[0].Probe.ServerPublicKey, server.PublicKey().String(); got != want {
		t.Errorf("pasted server_public_key %q, want the device's %q\n%s", got, want, out)
	}

	for name, readErr := range map[string]error{"unreadable": os.ErrNotExist, "no key": nil} {
		o.readDevice = func(context.Context, string) (*wgtypes.Device, error) {
			if readErr != nil {
				return nil, readErr
			}
			return &wgtypes.Device{Name: "wg7"}, nil
		}
		o.force = true
		stdout.Reset()
		if err := probeKey(context.Background(), &Env{Stdout: &stdout, Stderr: io.Discard}, o, []string{path}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stdout.String(), "  # server_public_key = \"...\"\n") || !strings.Contains(stdout.String(), "(wg7 could not be read here: ") {
			t.Errorf("%s: server_public_key not commented out with the reason:\n%s", name, stdout.String())
		}
	}
}
