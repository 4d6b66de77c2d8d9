package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/api"
	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/control"
	"github.com/wgbird/wgbird/internal/drain"
)

func runMain(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, &Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	return code, out.String(), errb.String()
}

// noDefaultConfig points the control commands' default config at a file
// that does not exist, for the test's duration.
func noDefaultConfig(t *testing.T) {
	old := defaultConfigPath
	defaultConfigPath = filepath.Join(t.TempDir(), "absent.toml")
	t.Cleanup(func() { defaultConfigPath = old })
}

func TestNoDaemon(t *testing.T) {
	noDefaultConfig(t)
	sock := filepath.Join(t.TempDir(), "wgbird.sock")
	for _, args := range [][]string{
		{"status"},
		{"status", "--json"},
		{"drain", "--reason", "x", "wg0"},
		{"drain", "--wait", "--timeout", "1s"},
		{"undrain"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			argv := append([]string{args[0], "--socket", sock}, args[1:]...)
			code, stdout, stderr := runMain(argv...)
			want := fmt.Sprintf("wgbird %s: wgbird is not running (no answer on %s)\n", args[0], sock)
			if code != ExitNoService || stdout != "" || stderr != want {
				t.Errorf("got exit %d, stdout %q, stderr %q; want exit %d and stderr %q", code, stdout, stderr, ExitNoService, want)
			}
		})
	}
}

func TestNoDaemonDefaultSocket(t *testing.T) {
	noDefaultConfig(t)
	if _, err := os.Stat(config.DefaultControlSocket); err == nil {
		t.Skipf("%s exists on this machine", config.DefaultControlSocket)
	}
	code, _, stderr := runMain("status")
	if want := "wgbird status: wgbird is not running (no answer on /run/wgbird/wgbird.sock)\n"; code != ExitNoService || stderr != want {
		t.Errorf("exit %d, stderr %q; want %d, %q", code, stderr, ExitNoService, want)
	}
}

const minimalConfig = `
[control]
socket = %q

[[service]]
interface = "wg0"
vips = ["192.168.20.1/24"]
protocols = ["wg_vip4"]
`

func TestSocketPath(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(good, []byte(fmt.Sprintf(minimalConfig, "/run/from-config.sock")), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[control]\nsocket = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	absent := filepath.Join(dir, "absent.toml")
	tests := []struct {
		name       string
		flags      ctlFlags
		defaultCfg string
		want       string
		wantCode   int    // when an error is expected
		wantWarn   string // on stderr
	}{
		{name: "--socket wins", flags: ctlFlags{socket: "/x.sock", config: good}, defaultCfg: good, want: "/x.sock"},
		{name: "--config", flags: ctlFlags{config: good}, defaultCfg: absent, want: "/run/from-config.sock"},
		{name: "default config", defaultCfg: good, want: "/run/from-config.sock"},
		{name: "no config", defaultCfg: absent, want: config.DefaultControlSocket},
		{name: "bad --config is an error", flags: ctlFlags{config: bad}, defaultCfg: good, wantCode: ExitConfig},
		{name: "bad default config: warned and skipped", defaultCfg: bad, want: config.DefaultControlSocket, wantWarn: "wgbird: warning: using /run/wgbird/wgbird.sock: " + bad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := defaultConfigPath
			defaultConfigPath = tt.defaultCfg
			defer func() { defaultConfigPath = old }()
			var stderr bytes.Buffer
			got, err := tt.flags.socketPath(&Env{Stderr: &stderr})
			if tt.wantCode != 0 {
				var ee *exitError
				if err == nil || !asExit(err, &ee) || ee.code != tt.wantCode {
					t.Fatalf("socketPath = %q, %v; want exit code %d", got, err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("socket = %q, want %q", got, tt.want)
			}
			if !strings.HasPrefix(stderr.String(), tt.wantWarn) || (tt.wantWarn == "") != (stderr.Len() == 0) {
				t.Errorf("stderr = %q, want it to start with %q", stderr.String(), tt.wantWarn)
			}
		})
	}
}

func asExit(err error, ee **exitError) bool {
	e, ok := err.(*exitError)
	*ee = e
	return ok
}

// fakeWatcher answers waitDrained's reads from scripted states. Every
// Peers call advances its clock by a second.
type fakeWatcher struct {
	mu      sync.Mutex
	now     time.Time
	period  time.Duration
	status  func(n int) api.ServiceStatus
	rx      func(n int) int64 // the client peer's counter at read n
	nStatus int
	nPeers  int
}

func (f *fakeWatcher) Status(context.Context) (api.StatusReply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.status(f.nStatus)
	f.nStatus++
	return api.StatusReply{Version: "test", Services: []api.ServiceStatus{st}}, nil
}

func (f *fakeWatcher) Peers(_ context.Context, service string) (api.PeersReply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(time.Second)
	r := api.PeersReply{
		Service: service, Interface: service, QuietPeriod: api.Duration(f.period), ReadAt: f.now,
		Peers: []api.Peer{{PublicKey: "Q2xpZW50S2V5AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", Endpoint: "198.18.0.2:40000", RxBytes: f.rx(f.nPeers)}},
	}
	f.nPeers++
	return r, nil
}

func drainedStatus(protoState string) func(int) api.ServiceStatus {
	return func(int) api.ServiceStatus {
		return api.ServiceStatus{
			Name: "wg0", Interface: "wg0", State: "withdrawn",
			Protocols: []api.Protocol{{Name: "wg_vip4", Proto: "Static", State: protoState}},
			Drain:     &api.Drain{Reason: "test"},
		}
	}
}

func TestWaitDrained(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	tests := []struct {
		name     string
		w        *fakeWatcher
		timeout  time.Duration
		wantCode int      // 0: success
		wantOut  []string // substrings of the output (stdout, or the error)
	}{
		{
			name: "withdrawn and traffic stops: done one quiet period after the last byte",
			w: &fakeWatcher{now: t0, period: 3 * time.Second, status: drainedStatus("down"),
				rx: func(n int) int64 { return int64(min(n, 4) * 1000) }},
			timeout: time.Minute,
			wantOut: []string{
				"wg0: BIRD withdrawn; traffic quiet for 0s of 3s\n",
				"wg0: BIRD withdrawn; traffic quiet for 0s of 3s, 1 of 1 peers active: Q2xpZW50S2… (198.18.0.2:40000) 1000 B in the last 5s",
				"wg0: BIRD withdrawn; traffic quiet for 3s (1 peer)",
				"drained: BIRD has withdrawn wg0 and its WireGuard traffic has gone quiet",
			},
		},
		{
			name: "a client keeps sending: times out naming it",
			w: &fakeWatcher{now: t0, period: 3 * time.Second, status: drainedStatus("down"),
				rx: func(n int) int64 { return int64(n * 2048) }},
			timeout:  200 * time.Millisecond,
			wantCode: ExitFailure,
			wantOut:  []string{"timed out after 200ms waiting for the drain (it stays); still active: wg0: traffic quiet for 0s of 3s, 1 of 1 peers active: Q2xpZW50S2… (198.18.0.2:40000) 10.0 KiB in the last 5s"},
		},
		{
			name: "BIRD still announcing: times out naming the protocol",
			w: &fakeWatcher{now: t0, period: time.Second, status: drainedStatus("up"),
				rx: func(int) int64 { return 0 }},
			timeout:  200 * time.Millisecond,
			wantCode: ExitFailure,
			wantOut:  []string{"still active: wg0: BIRD protocol still enabled: wg_vip4 (up)"},
		},
		{
			name: "undrained meanwhile: fails at once",
			w: &fakeWatcher{now: t0, period: 10 * time.Second, rx: func(int) int64 { return 0 },
				status: func(n int) api.ServiceStatus {
					st := drainedStatus("down")(n)
					if n > 1 {
						st.Drain = nil
					}
					return st
				}},
			timeout:  time.Minute,
			wantCode: ExitFailure,
			wantOut:  []string{"wg0 was undrained while waiting"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := waitDrained(context.Background(), &out, tt.w, []string{"wg0"}, tt.timeout, time.Millisecond)
			got := out.String()
			code := ExitOK
			if err != nil {
				got += err.Error()
				code = ExitFailure
				if ee, ok := err.(*exitError); ok {
					code = ee.code
				}
			}
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d; output:\n%s", code, tt.wantCode, got)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
		})
	}
}

// fakeDaemon is the control server's view of a daemon: one service, wg0,
// whose protocol is down once drained and whose peer is idle.
type fakeDaemon struct {
	mu    sync.Mutex
	drain *api.Drain
}

var _ control.Daemon = (*fakeDaemon)(nil)

func (d *fakeDaemon) BIRDStatus() api.BIRDStatus { return api.BIRDStatus{} }

func (f *fakeDaemon) Services() []string { return []string{"wg0"} }

func (f *fakeDaemon) Status() []api.ServiceStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := api.ServiceStatus{Name: "wg0", Interface: "wg0", State: "announced",
		Protocols: []api.Protocol{{Name: "wg_vip4", State: "up"}}, Drain: f.drain}
	if f.drain != nil {
		st.State, st.Protocols[0].State = "withdrawn", "down"
	}
	return []api.ServiceStatus{st}
}

func (f *fakeDaemon) SetDrain(_ []string, d *api.Drain) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drain = d
	return nil
}

func (f *fakeDaemon) Device(context.Context, string) (*wgtypes.Device, error) {
	return &wgtypes.Device{Name: "wg0", Peers: []wgtypes.Peer{{ReceiveBytes: 10, TransmitBytes: 20}}}, nil
}

func (f *fakeDaemon) QuietPeriod(string) (time.Duration, bool) { return time.Millisecond, true }

// TestCommandsAgainstServer runs drain, status and undrain through Main
// against a real control server.
func TestCommandsAgainstServer(t *testing.T) {
	noDefaultConfig(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "wgbird.sock")
	d := &fakeDaemon{}
	srv, err := control.Start(control.Options{Socket: sock, Version: "v9", Log: slog.New(slog.NewTextHandler(io.Discard, nil))},
		d, drain.NewStore(filepath.Join(dir, "run"), filepath.Join(dir, "lib")))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	code, stdout, stderr := runMain("drain", "--socket", sock, "--reason", "kernel update", "--persist", "--wait", "--timeout", "30s", "wg0")
	if code != ExitOK {
		t.Fatalf("drain: exit %d, stderr %q", code, stderr)
	}
	if !strings.HasPrefix(stdout, "drained wg0 until undrain (persistent: kept across reboots): kernel update\n") ||
		!strings.HasSuffix(stdout, "drained: BIRD has withdrawn wg0 and its WireGuard traffic has gone quiet\n") {
		t.Errorf("drain output:\n%s", stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "lib", "drains", "wg0.json")); err != nil {
		t.Errorf("persistent drain file: %v", err)
	}

	code, stdout, stderr = runMain("status", "--socket", sock, "--json")
	if code != ExitOK {
		t.Fatalf("status: exit %d, stderr %q", code, stderr)
	}
	var st api.StatusReply
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, stdout)
	}
	if len(st.Services) != 1 || st.Services[0].Drain == nil || st.Services[0].Drain.Reason != "kernel update" || !st.Services[0].Drain.Persist {
		t.Errorf("status: %+v", st)
	}

	code, stdout, _ = runMain("status", "--socket", sock)
	if code != ExitOK || !strings.Contains(stdout, "drained since") || !strings.Contains(stdout, "persistent across reboots: kernel update") {
		t.Errorf("status text: exit %d\n%s", code, stdout)
	}

	code, stdout, stderr = runMain("undrain", "--socket", sock)
	if code != ExitOK || stdout != "undrained wg0: announced again after rise healthy checks\n" {
		t.Errorf("undrain: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if d.drain != nil {
		t.Errorf("still drained")
	}

	code, _, stderr = runMain("drain", "--socket", sock, "wg9")
	if want := "wgbird drain: no service \"wg9\" (configured: wg0)\n"; code != ExitConfig || stderr != want {
		t.Errorf("unknown service: exit %d, stderr %q; want %d, %q", code, stderr, ExitConfig, want)
	}
}
