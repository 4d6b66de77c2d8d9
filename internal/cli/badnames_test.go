package cli

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBIRDSocket is a unix socket that speaks just enough of BIRD's
// control protocol (replies as a real bird 2.0.12 sends them) to let
// `wgbird run` start, and records every command it receives.
type fakeBIRDSocket struct {
	path string
	mu   sync.Mutex
	cmds []string
	conn int
}

// fakeShowProtocols is `show protocols` of a server with the lab's
// protocols, captured from bird 2.0.12.
const fakeShowProtocols = "2002-Name       Proto      Table      State  Since         Info\n" +
	"1002-device1    Device     ---        up     17:28:23.462  \n" +
	" wg_vip4    Static     master4    down   17:28:23.462  \n" +
	" bgp_router BGP        ---        start  17:28:23.462  Idle          \n" +
	"0000 \n"

func startFakeBIRD(t *testing.T, dir string) *fakeBIRDSocket {
	t.Helper()
	f := &fakeBIRDSocket{path: filepath.Join(dir, "bird.ctl")}
	ln, err := net.Listen("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conn++
			f.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				fmt.Fprint(c, "0001 BIRD 2.0.12 ready.\n")
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					cmd := strings.TrimSpace(line)
					f.mu.Lock()
					f.cmds = append(f.cmds, cmd)
					f.mu.Unlock()
					if cmd == "show protocols" {
						fmt.Fprint(c, fakeShowProtocols)
					} else {
						fmt.Fprint(c, "8007 Access denied\n")
					}
				}
			}()
		}
	}()
	return f
}

func (f *fakeBIRDSocket) seen() (conns int, cmds []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conn, append([]string(nil), f.cmds...)
}

// TestRunRefusesBadNames: protocol names that are not BIRD symbols and
// interface names Linux would refuse stop `wgbird run` with exit 2 and the
// config's exact message before it connects to BIRD; a name that is a
// symbol but no protocol of BIRD's (`all`, which unquoted would mean every
// protocol) stops it after reading BIRD's protocols, before any enable or
// disable.
func TestRunRefusesBadNames(t *testing.T) {
	for _, tt := range []struct {
		name, iface, protocol string
		want                  string
		reachesBIRD           bool
	}{
		{name: "protocol with a command in it", iface: "wg0", protocol: `wg_vip4\"; disable \"bgp_router`,
			want: `service[1].protocols[1]: invalid BIRD protocol name "wg_vip4\"; disable \"bgp_router": want a letter or '_' then letters, digits or '_', at most 64 characters`},
		{name: "protocol with a newline", iface: "wg0", protocol: `wg_vip4\ndisable all`,
			want: `service[1].protocols[1]: invalid BIRD protocol name "wg_vip4\ndisable all": want a letter or '_' then letters, digits or '_', at most 64 characters`},
		{name: "protocol pattern", iface: "wg0", protocol: `wg_*`,
			want: `service[1].protocols[1]: invalid BIRD protocol name "wg_*": want a letter or '_' then letters, digits or '_', at most 64 characters`},
		{name: "interface with a slash", iface: "wg0/../eth0", protocol: "wg_vip4",
			want: `service[1].interface: invalid interface name "wg0/../eth0": must not contain '/', ':' or whitespace`},
		{name: "interface too long", iface: "wireguard-server0", protocol: "wg_vip4",
			want: `service[1].interface: invalid interface name "wireguard-server0": 17 bytes, at most 15`},
		{name: "protocol all, a BIRD keyword", iface: "wgbirdtest0", protocol: "all",
			want: `service "wgbirdtest0": BIRD has no protocol "all"`, reachesBIRD: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			bird := startFakeBIRD(t, dir)
			conf := filepath.Join(dir, "wgbird.toml")
			text := fmt.Sprintf(`[bird]
socket = %q

[control]
socket = %q
runtime_dir = %q
state_dir = %q

[[service]]
interface = "%s"
vips = ["192.168.20.1/24"]
protocols = ["%s"]
`, bird.path, filepath.Join(dir, "wgbird.sock"), filepath.Join(dir, "run"), filepath.Join(dir, "state"), tt.iface, tt.protocol)
			if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var out, errb logBuffer
			code := Main(ctx, []string{"run", "--config", conf}, &Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
			if code != ExitConfig {
				t.Errorf("exit %d, want %d\nstderr: %s", code, ExitConfig, errb.String())
			}
			if !strings.Contains(errb.String(), tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, errb.String())
			}
			conns, cmds := bird.seen()
			if !tt.reachesBIRD && conns != 0 {
				t.Errorf("wgbird connected to BIRD %d times before refusing the config (commands %q)", conns, cmds)
			}
			for _, c := range cmds {
				if !strings.HasPrefix(c, "show ") {
					t.Errorf("BIRD received %q (all commands: %q), want only reads", c, cmds)
				}
			}
			if tt.reachesBIRD && !slices.Contains(cmds, "show protocols") {
				t.Errorf("BIRD received %q, want a show protocols", cmds)
			}
		})
	}
}
