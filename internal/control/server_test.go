package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/api"
	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/daemon"
	"github.com/wgbird/wgbird/internal/drain"
	"github.com/wgbird/wgbird/internal/execcheck"
	"github.com/wgbird/wgbird/internal/fakes"
	"github.com/wgbird/wgbird/internal/health"
)

var _ Daemon = (*daemon.Daemon)(nil)

// unwritable is a directory that cannot be created: it lies under a
// device.
var unwritable = filepath.Join(os.DevNull, "dir")

// mustDaemon returns a daemon of testConfig with deps.
func mustDaemon(t testing.TB, deps daemon.Deps) *daemon.Daemon {
	t.Helper()
	d, err := daemon.New(testConfig(), deps)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// newBIRD is BIRD with both services' protocols enabled.
func newBIRD() *fakes.BIRD {
	return fakes.NewBIRD(fakes.Static("wg_vip4", true), fakes.Static("wg1_vip4", true))
}

// upLink is wg0 up with its VIP.
func upLink() *fakes.Links {
	return fakes.NewLinks(fakes.UpLink(netip.MustParsePrefix("192.168.20.1/24")))
}

var (
	clientKey = mustKey()
	serverKey = mustKey()
)

func mustKey() wgtypes.Key {
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		panic(err)
	}
	return k
}

func device() *wgtypes.Device {
	return &wgtypes.Device{
		Name: "wg0", PrivateKey: serverKey, PublicKey: serverKey.PublicKey(), ListenPort: 51820,
		Peers: []wgtypes.Peer{{
			PublicKey:         clientKey.PublicKey(),
			Endpoint:          &net.UDPAddr{IP: net.IPv4(198, 18, 0, 2), Port: 40000},
			ReceiveBytes:      1234,
			TransmitBytes:     5678,
			LastHandshakeTime: time.Unix(1700000000, 0),
		}},
	}
}

func testLog(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func testConfig() *config.Config {
	svc := func(name string, proto string) config.Service {
		return config.Service{
			Name: name, Interface: name, VIPs: []netip.Prefix{netip.MustParsePrefix("192.168.20.1/24")},
			Protocols: []string{proto}, Interval: 20 * time.Millisecond, FastInterval: 20 * time.Millisecond,
			Timeout: 100 * time.Millisecond, Rise: 1, Fall: 1, MinPeers: 1, QuietPeriod: 7 * time.Second,
		}
	}
	cfg := config.Default()
	cfg.Services = []config.Service{svc("wg0", "wg_vip4"), svc("wg1", "wg1_vip4")}
	return &cfg
}

// apiRig is a real daemon on fakes, running, with a control server on a
// socket in a temporary directory.
type apiRig struct {
	bird   *fakes.BIRD
	wg     *fakes.WireGuard
	d      *daemon.Daemon
	store  *drain.Store
	srv    *Server
	c      *Client
	dir    string
	cancel context.CancelFunc
}

func newAPIRig(t *testing.T, store *drain.Store) *apiRig {
	t.Helper()
	dir := t.TempDir()
	r := &apiRig{
		bird: newBIRD(),
		wg:   fakes.NewWireGuards(map[string]*wgtypes.Device{"wg0": device()}),
		dir:  dir,
	}
	if store == nil {
		store = drain.NewStore(filepath.Join(dir, "run"), filepath.Join(dir, "lib"))
	}
	r.store = store
	r.d = mustDaemon(t, daemon.Deps{
		BIRD: r.bird, WireGuard: r.wg, Links: upLink(),
		Exec: func(context.Context, execcheck.Spec) health.Check { return health.Check{OK: true} },
		Log:  testLog(t),
	})
	srv, err := Start(Options{Socket: filepath.Join(dir, "sock", "wgbird.sock"), Version: "v-test", Log: testLog(t)}, r.d, store)
	if err != nil {
		t.Fatal(err)
	}
	r.srv = srv
	r.c = NewClient(srv.Socket(), 5*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- r.d.Run(ctx, func() { close(ready) }) }()
	t.Cleanup(func() {
		r.c.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		t.Fatal("daemon not ready")
	}
	return r
}

func (r *apiRig) waitDisabled(t *testing.T, proto string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case p := <-r.bird.Disabled():
			if p == proto {
				return
			}
		case <-deadline:
			t.Fatalf("%s not disabled", proto)
		}
	}
}

func drainOf(st []api.ServiceStatus, name string) *api.Drain {
	for _, s := range st {
		if s.Name == name {
			return s.Drain
		}
	}
	return nil
}

func TestAPIStatus(t *testing.T) {
	r := newAPIRig(t, nil)
	st, err := r.c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range st.Services {
		names = append(names, s.Name)
	}
	if diff := cmp.Diff(api.StatusReply{Version: "v-test"}, api.StatusReply{Version: st.Version}); diff != "" {
		t.Errorf("version (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"wg0", "wg1"}, names); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}
}

func TestAPIDrainUndrain(t *testing.T) {
	r := newAPIRig(t, nil)
	ctx := context.Background()
	rep, err := r.c.Drain(ctx, api.DrainRequest{Services: []string{"wg0"}, Reason: "kernel update", Persist: true})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"wg0"}, rep.Services); diff != "" {
		t.Errorf("drained (-want +got):\n%s", diff)
	}
	r.waitDisabled(t, "wg_vip4")

	st, err := r.c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := &api.Drain{Reason: "kernel update", Since: rep.Drain.Since, Persist: true}
	if diff := cmp.Diff(want, drainOf(st.Services, "wg0")); diff != "" {
		t.Errorf("wg0's drain (-want +got):\n%s", diff)
	}
	if d := drainOf(st.Services, "wg1"); d != nil {
		t.Errorf("wg1 drained too: %+v", d)
	}
	loaded, _ := r.store.Load([]string{"wg0", "wg1"})
	if len(loaded) != 1 || loaded[0].Service != "wg0" || !loaded[0].Drain.Persist {
		t.Errorf("stored = %+v", loaded)
	}

	if _, err := r.c.Undrain(ctx, api.UndrainRequest{}); err != nil {
		t.Fatal(err)
	}
	if d := drainOf(r.d.Status(), "wg0"); d != nil {
		t.Errorf("still drained: %+v", d)
	}
	if loaded, _ := r.store.Load([]string{"wg0", "wg1"}); len(loaded) != 0 {
		t.Errorf("stored after undrain = %+v", loaded)
	}
}

func TestAPIDrainAllDefaultReason(t *testing.T) {
	r := newAPIRig(t, nil)
	rep, err := r.c.Drain(context.Background(), api.DrainRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"wg0", "wg1"}, rep.Services); diff != "" {
		t.Errorf("drained (-want +got):\n%s", diff)
	}
	for _, s := range r.d.Status() {
		if s.Drain == nil || s.Drain.Reason != DefaultReason || s.Drain.Persist {
			t.Errorf("%s: drain %+v", s.Name, s.Drain)
		}
	}
}

func TestAPIErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		store    func(t *testing.T) *drain.Store
		call     func(c *Client) error
		wantCode int
		wantMsg  string
	}{
		{
			name: "unknown service",
			call: func(c *Client) error {
				_, err := c.Drain(ctx, api.DrainRequest{Services: []string{"wg0", "nope"}})
				return err
			},
			wantCode: 400, wantMsg: `no service "nope" (configured: wg0, wg1)`,
		},
		{
			name:     "control characters in the reason",
			call:     func(c *Client) error { _, err := c.Drain(ctx, api.DrainRequest{Reason: "a\nb"}); return err },
			wantCode: 400, wantMsg: "control characters",
		},
		{
			name: "runtime dir unwritable: drain refused",
			store: func(t *testing.T) *drain.Store {
				return drain.NewStore(unwritable, t.TempDir())
			},
			call:     func(c *Client) error { _, err := c.Drain(ctx, api.DrainRequest{Services: []string{"wg0"}}); return err },
			wantCode: 500, wantMsg: "drain not applied: storing it: creating ",
		},
		{
			name: "state dir unwritable: persistent drain refused",
			store: func(t *testing.T) *drain.Store {
				return drain.NewStore(t.TempDir(), unwritable)
			},
			call: func(c *Client) error {
				_, err := c.Drain(ctx, api.DrainRequest{Services: []string{"wg0"}, Persist: true})
				return err
			},
			wantCode: 500, wantMsg: "not a directory",
		},
		{
			name:     "peers of an unknown service",
			call:     func(c *Client) error { _, err := c.Peers(ctx, "nope"); return err },
			wantCode: 404, wantMsg: `no service "nope"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st *drain.Store
			if tt.store != nil {
				st = tt.store(t)
			}
			r := newAPIRig(t, st)
			err := tt.call(r.c)
			var api *APIError
			if !errors.As(err, &api) || api.StatusCode != tt.wantCode || !strings.Contains(api.Message, tt.wantMsg) {
				t.Fatalf("error = %#v, want %d containing %q", err, tt.wantCode, tt.wantMsg)
			}
			for _, s := range r.d.Status() {
				if s.Drain != nil {
					t.Errorf("%s drained after a refused request", s.Name)
				}
			}
		})
	}
}

func TestAPIPeers(t *testing.T) {
	r := newAPIRig(t, nil)
	ctx := context.Background()
	got, err := r.c.Peers(ctx, "wg0")
	if err != nil {
		t.Fatal(err)
	}
	want := api.PeersReply{
		Service: "wg0", Interface: "wg0", QuietPeriod: api.Duration(7 * time.Second), ReadAt: got.ReadAt,
		Peers: []api.Peer{{
			PublicKey: clientKey.PublicKey().String(), Endpoint: "198.18.0.2:40000",
			RxBytes: 1234, TxBytes: 5678, LastHandshake: time.Unix(1700000000, 0),
		}},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("peers (-want +got):\n%s", diff)
	}

	// wg1 has no device: no traffic can flow, which is an answer.
	got, err = r.c.Peers(ctx, "wg1")
	if err != nil {
		t.Fatal(err)
	}
	if !got.DeviceMissing || len(got.Peers) != 0 {
		t.Errorf("wg1 = %+v, want device missing", got)
	}

	// A device that cannot be read is an error, not silence.
	r.wg.Set(nil, context.DeadlineExceeded)
	_, err = r.c.Peers(ctx, "wg0")
	var api *APIError
	if !errors.As(err, &api) || api.StatusCode != 503 || !strings.Contains(api.Message, `reading WireGuard device "wg0"`) {
		t.Errorf("error = %v, want 503 naming the device", err)
	}
}

func TestSocket(t *testing.T) {
	newDaemon := func() *daemon.Daemon {
		return mustDaemon(t, daemon.Deps{BIRD: newBIRD(), WireGuard: fakes.NewWireGuard(nil), Links: upLink(), Log: testLog(t)})
	}
	start := func(t *testing.T, sock, group string) (*Server, error) {
		dir := t.TempDir()
		return Start(Options{Socket: sock, Group: group, Log: testLog(t)}, newDaemon(), drain.NewStore(dir, dir))
	}

	t.Run("created with its directory, mode 0660, removed on close", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "a", "b", "wgbird.sock")
		srv, err := start(t, sock, "")
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(sock)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o660 {
			t.Errorf("mode = %v, want a socket with 0660", fi.Mode())
		}
		entries, _ := os.ReadDir(filepath.Dir(sock))
		if len(entries) != 1 {
			t.Errorf("directory holds %d entries, want the socket alone", len(entries))
		}
		if err := srv.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(sock); !os.IsNotExist(err) {
			t.Errorf("socket left after Close: %v", err)
		}
	})

	t.Run("group", func(t *testing.T) {
		g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
		if err != nil {
			t.Skipf("own group: %v", err)
		}
		sock := filepath.Join(t.TempDir(), "wgbird.sock")
		srv, err := start(t, sock, g.Name)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		fi, err := os.Lstat(sock)
		if err != nil {
			t.Fatal(err)
		}
		if gid := fi.Sys().(*syscall.Stat_t).Gid; strconv.Itoa(int(gid)) != g.Gid {
			t.Errorf("gid = %d, want %s", gid, g.Gid)
		}
	})

	t.Run("unknown group is an error", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "wgbird.sock")
		_, err := start(t, sock, "wgbird-no-such-group")
		if !errors.Is(err, ErrUnknownGroup) || err.Error() != `control.group "wgbird-no-such-group": no such group` {
			t.Fatalf("Start = %v", err)
		}
		if _, err := os.Lstat(sock); !os.IsNotExist(err) {
			t.Errorf("socket created anyway")
		}
	})

	t.Run("stale socket replaced", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "wgbird.sock")
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		ln.(*net.UnixListener).SetUnlinkOnClose(false)
		ln.Close() // the file stays; connecting is refused
		srv, err := start(t, sock, "")
		if err != nil {
			t.Fatalf("Start over a stale socket: %v", err)
		}
		defer srv.Close()
		if _, err := NewClient(sock, time.Second).Status(context.Background()); err != nil {
			t.Errorf("Status: %v", err)
		}
	})

	t.Run("another wgbird answering: refused, its socket kept", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "wgbird.sock")
		first, err := start(t, sock, "")
		if err != nil {
			t.Fatal(err)
		}
		defer first.Close()
		_, err = start(t, sock, "")
		if err == nil || err.Error() != fmt.Sprintf("another wgbird is running on %s", sock) {
			t.Fatalf("second Start = %v", err)
		}
		if _, err := NewClient(sock, time.Second).Status(context.Background()); err != nil {
			t.Errorf("first server no longer answers: %v", err)
		}
	})

	t.Run("not a socket: refused, file kept", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "wgbird.sock")
		if err := os.WriteFile(sock, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := start(t, sock, "")
		if err == nil || !strings.Contains(err.Error(), "is not a socket") {
			t.Fatalf("Start = %v", err)
		}
		if b, _ := os.ReadFile(sock); string(b) != "x" {
			t.Errorf("file changed")
		}
	})

	t.Run("close leaves a socket that is not ours", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "wgbird.sock")
		srv, err := start(t, sock, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(sock); err != nil {
			t.Fatal(err)
		}
		other, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		if err := srv.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(sock); err != nil {
			t.Errorf("someone else's socket removed: %v", err)
		}
	})

	t.Run("close returns while a client holds a connection", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "wgbird.sock")
		srv, err := start(t, sock, "")
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("GET /v1/status HTTP/1.1\r\nHost: x\r\n")) // headers never end
		done := make(chan error, 1)
		go func() { done <- srv.Close() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close blocked by a stalled client")
		}
	})
}

func TestClientNotRunning(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	for _, sock := range []string{filepath.Join(dir, "missing.sock"), stale, filepath.Join(dir, "no-dir", "x.sock")} {
		_, err := NewClient(sock, time.Second).Status(context.Background())
		var nr *NotRunningError
		if !errors.As(err, &nr) {
			t.Errorf("%s: error = %v, want NotRunningError", sock, err)
			continue
		}
		if want := "wgbird is not running (no answer on " + sock + ")"; err.Error() != want {
			t.Errorf("message = %q, want %q", err, want)
		}
	}
}
