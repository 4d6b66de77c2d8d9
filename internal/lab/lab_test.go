package lab

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wgbird/wgbird/internal/probe"
)

func TestParseMode(t *testing.T) {
	for _, m := range Modes {
		got, err := ParseMode(string(m.Mode))
		if err != nil || got.Mode != m.Mode {
			t.Errorf("ParseMode(%q) = %v, %v", m.Mode, got.Mode, err)
		}
	}
	_, err := ParseMode("explode")
	if err == nil || !strings.Contains(err.Error(), "kill, hang, link-delete") {
		t.Errorf("ParseMode(explode) error = %v, want the list of modes", err)
	}
	if len(Modes) != 12 {
		t.Errorf("%d modes, want 12", len(Modes))
	}
}

func TestProtocolLine(t *testing.T) {
	// Captured from bird 2.0.12.
	out := "BIRD 2.0.12 ready.\nName       Proto      Table      State  Since         Info\nwg_vip4    Static     master4    up     17:41:18.977  \n"
	if got, want := protocolLine(out, "wg_vip4"), "wg_vip4 Static master4 up 17:41:18.977"; got != want {
		t.Errorf("protocolLine = %q, want %q", got, want)
	}
}

func TestWgbirdConf(t *testing.T) {
	got := WgbirdConf("/run/wgbird-lab/s1", Thresholds{Interval: 500 * time.Millisecond, Rise: 3})
	want := `[bird]
socket = "/run/wgbird-lab/s1/bird.ctl"

[control]
socket = "/run/wgbird-lab/s1/wgbird.sock"
runtime_dir = "/run/wgbird-lab/s1/run"
state_dir = "/run/wgbird-lab/s1/state"

[metrics]
listen = "127.0.0.1:9476"

[[service]]
interface = "wg0"
vips = ["192.168.20.1/24"]
protocols = ["wg_vip4"]
group = ["10.0.5.1", "10.0.7.1", "10.0.9.1"]
interval = "500ms"
rise = 3
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("WgbirdConf (-want +got):\n%s", diff)
	}
}

// TestKeysAndProbe: every server lists the client and its own probe as
// peers, and its wgbird.toml probes with that key and expects the anycast
// public key; with NoProbe neither appears.
func TestKeysAndProbe(t *testing.T) {
	for _, noProbe := range []bool{false, true} {
		l := New(Config{Dir: t.TempDir(), NoProbe: noProbe})
		if err := l.makeDirs(); err != nil {
			t.Fatal(err)
		}
		if err := l.makeKeys(); err != nil {
			t.Fatal(err)
		}
		client, err := l.publicKey("client")
		if err != nil {
			t.Fatal(err)
		}
		server, err := l.publicKey("s1")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range Servers {
			b, err := os.ReadFile(l.path(s.Name, "wg0.conf"))
			if err != nil {
				t.Fatal(err)
			}
			conf, err := l.wgbirdConf(s.Name)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), "PublicKey = "+client+"\n") {
				t.Errorf("%s wg0.conf lacks the client peer:\n%s", s.Name, b)
			}
			pk, err := probe.LoadPrivateKey(l.ProbeKeyFile(s.Name))
			if noProbe {
				if err == nil || strings.Contains(conf, "[service.probe]") || strings.Count(string(b), "[Peer]") != 1 {
					t.Errorf("NoProbe: %s has a probe key (%v) or table:\n%s\n%s", s.Name, err, b, conf)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), "PublicKey = "+pk.PublicKey().String()+"\n") {
				t.Errorf("%s wg0.conf lacks its probe peer:\n%s", s.Name, b)
			}
			want := ProbeTable(l.ProbeKeyFile(s.Name), server)
			if !strings.HasSuffix(conf, want) {
				t.Errorf("%s wgbird.toml does not end with %q:\n%s", s.Name, want, conf)
			}
		}
	}
}

func TestServerBirdConfStartsDisabled(t *testing.T) {
	conf := ServerBirdConf(Servers[0], "/x/bird.log")
	for _, want := range []string{
		"protocol static wg_vip4 {\n    disabled;",
		`route 192.168.20.0/24 via "wg0";`,
		"bfd on;",
		"neighbor 10.0.0.1 as 65001;",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("server bird.conf lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "graceful;") {
		t.Errorf("server bird.conf uses bfd graceful")
	}
	rconf := RouterBirdConf("/x/bird.log")
	for _, want := range []string{"merge paths yes;", "neighbor 10.0.5.1 as 65000;", "neighbor 10.0.7.1 as 65000;", "bfd on;", `interface "br0"`} {
		if !strings.Contains(rconf, want) {
			t.Errorf("router bird.conf lacks %q:\n%s", want, rconf)
		}
	}
}

func TestAll(t *testing.T) {
	s1, s2 := Servers[0].Addr, Servers[1].Addr
	if !All([]netip.Addr{s1, s2}) || All([]netip.Addr{s2}) {
		t.Error("All is wrong")
	}
	l := New(Config{ServerCount: 3})
	if l.AllRouted([]netip.Addr{s1, s2}) || !l.AllRouted([]netip.Addr{s1, s2, AllServers[2].Addr}) {
		t.Error("AllRouted is wrong with three servers")
	}
}

// Config.WgbirdExtra ends a server's wgbird.toml, after the probe table,
// so that its keys belong to the service (labsoak's TestWgbirdExtra parses
// the soak's).
func TestWgbirdExtra(t *testing.T) {
	const extra = "# the soak's exec check and hook\n"
	l := New(Config{Dir: t.TempDir(), WgbirdExtra: extra})
	if err := l.makeDirs(); err != nil {
		t.Fatal(err)
	}
	if err := l.makeKeys(); err != nil {
		t.Fatal(err)
	}
	text, err := l.wgbirdConf("s1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "[service.probe]") || !strings.HasSuffix(text, "\n"+extra) {
		t.Errorf("wgbird.toml does not end with the extra after the probe table:\n%s", text)
	}
}
