package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const file = "/etc/wgbird/wgbird.toml"

// minimal is the whole configuration of the seed post's server.
const minimal = `[[service]]
interface = "wg0"
vips = ["192.168.20.1/24"]
protocols = ["wg_vip4"]
`

const full = `# Every key, none at its default.
[bird]
socket = "/run/bird/bird2.ctl"
timeout = "1500ms"

[control]
socket = "/run/wgbird/ctl.sock"
group = "wgbird"
state_dir = "/var/lib/wgbird2"
runtime_dir = "/run/wgbird2"

[shutdown]
delay = "5s"
on_system_shutdown = "keep"
on_stop = "withdraw"

[metrics]
listen = "127.0.0.1:9474"

[hook]
command = ["/usr/local/bin/wgbird-hook", "--notify"]
timeout = "5s"

[[service]]
name = "vpn"
interface = "wg0"
vips = ["192.168.20.1/24", "fd00::1/64"]
protocols = ["wg_vip4", "wg_vip6"]
interval = "2s"
fast_interval = "100ms"
timeout = "500ms"
rise = 5
fall = 1
listen_port = 51820
min_peers = 0
max_handshake_age = "3m"
quiet_period = "30s"
vip_source = false
vip_source_table = 1000
takeover = false
group = ["10.0.5.1", "10.0.7.1", "fd00:5::1"]
group_port = 51999
group_secret_file = "/etc/wgbird/group.secret"

  [[service.exec]]
  command = ["/usr/local/bin/check-dns", "192.168.20.53"]

  [[service.exec]]
  name = "upstream"
  command = ["/bin/ping", "-c1", "-W1", "10.0.0.1"]
  timeout = "1s"

  [service.probe]
  private_key_file = "/etc/wgbird/probe.key"
  preshared_key_file = "/etc/wgbird/probe.psk"
  server_public_key = "SIiU/AB9IJaK3i+R9l42aWzMfoGbnGTU8zkCbVIg2kg="
  endpoint = "192.168.20.1:51820"
  timeout = "100ms"

[[service]]
interface = "wg1"
vips = ["10.8.0.1/16"]
protocols = ["wg1_vip4"]
`

func minimalService() Service {
	return Service{
		Name:             "wg0",
		Interface:        "wg0",
		VIPs:             []netip.Prefix{netip.MustParsePrefix("192.168.20.1/24")},
		Protocols:        []string{"wg_vip4"},
		Interval:         time.Second,
		FastInterval:     100 * time.Millisecond,
		LivenessInterval: 500 * time.Millisecond,
		Timeout:          250 * time.Millisecond,
		Rise:             3,
		Fall:             2,
		MinPeers:         1,
		QuietPeriod:      10 * time.Second,
		VIPSource:        true,
		Takeover:         true,
		GroupPort:        51871,
	}
}

func defaults() Config {
	return Config{
		BIRD:     BIRD{Socket: "/run/bird/bird.ctl", Timeout: 2 * time.Second},
		Control:  Control{Socket: "/run/wgbird/wgbird.sock", StateDir: "/var/lib/wgbird", RuntimeDir: "/run/wgbird"},
		Shutdown: Shutdown{Delay: 2 * time.Second, OnSystemShutdown: "withdraw", OnStop: "keep"},
		Hook:     Hook{Timeout: 10 * time.Second},
	}
}

func TestParseValid(t *testing.T) {
	withServices := func(s ...Service) *Config {
		c := defaults()
		c.Services = s
		return &c
	}
	fullWant := &Config{
		BIRD:     BIRD{Socket: "/run/bird/bird2.ctl", Timeout: 1500 * time.Millisecond},
		Control:  Control{Socket: "/run/wgbird/ctl.sock", Group: "wgbird", StateDir: "/var/lib/wgbird2", RuntimeDir: "/run/wgbird2"},
		Shutdown: Shutdown{Delay: 5 * time.Second, OnSystemShutdown: Keep, OnStop: Withdraw},
		Metrics:  Metrics{Listen: "127.0.0.1:9474"},
		Hook:     Hook{Command: []string{"/usr/local/bin/wgbird-hook", "--notify"}, Timeout: 5 * time.Second},
		Services: []Service{
			{
				Name:      "vpn",
				Interface: "wg0",
				VIPs: []netip.Prefix{
					netip.MustParsePrefix("192.168.20.1/24"),
					netip.MustParsePrefix("fd00::1/64"),
				},
				Protocols:        []string{"wg_vip4", "wg_vip6"},
				Interval:         2 * time.Second,
				FastInterval:     100 * time.Millisecond,
				LivenessInterval: 500 * time.Millisecond,
				Timeout:          500 * time.Millisecond,
				Rise:             5,
				Fall:             1,
				ListenPort:       51820,
				MinPeers:         0,
				MaxHandshakeAge:  3 * time.Minute,
				QuietPeriod:      30 * time.Second,
				VIPSourceTable:   1000,
				Group:            []netip.Addr{netip.MustParseAddr("10.0.5.1"), netip.MustParseAddr("10.0.7.1"), netip.MustParseAddr("fd00:5::1")},
				GroupPort:        51999,
				GroupSecretFile:  "/etc/wgbird/group.secret",
				Exec: []Exec{
					{Name: "exec1", Command: []string{"/usr/local/bin/check-dns", "192.168.20.53"}, Timeout: 2 * time.Second},
					{Name: "upstream", Command: []string{"/bin/ping", "-c1", "-W1", "10.0.0.1"}, Timeout: time.Second},
				},
				Probe: &Probe{
					PrivateKeyFile:   "/etc/wgbird/probe.key",
					PresharedKeyFile: "/etc/wgbird/probe.psk",
					ServerPublicKey:  "SIiU/AB9IJaK3i+R9l42aWzMfoGbnGTU8zkCbVIg2kg=",
					Endpoint:         "192.168.20.1:51820",
					Timeout:          100 * time.Millisecond,
				},
			},
			func() Service {
				s := minimalService()
				s.Name, s.Interface = "wg1", "wg1"
				s.VIPs = []netip.Prefix{netip.MustParsePrefix("10.8.0.1/16")}
				s.Protocols = []string{"wg1_vip4"}
				return s
			}(),
		},
	}
	shortInterval := minimalService()
	shortInterval.Interval = 100 * time.Millisecond
	shortInterval.FastInterval = 100 * time.Millisecond
	shortInterval.LivenessInterval = 100 * time.Millisecond
	shortInterval.Timeout = 50 * time.Millisecond

	tests := []struct {
		name string
		doc  string
		want *Config
	}{
		{"minimal", minimal, withServices(minimalService())},
		{"full", full, fullWant},
		{"inline tables and dotted keys", `bird.timeout = "2s"
service = [
  { interface = "wg0", vips = ["192.168.20.1/24"], protocols = ["wg_vip4"] },
]
`, withServices(minimalService())},
		{"empty tables", "[bird]\n[control]\n[shutdown]\n[metrics]\n" + minimal, withServices(minimalService())},
		{"short interval shrinks the defaults", minimal + `interval = "100ms"` + "\n", withServices(shortInterval)},
		{"metrics on every address", "[metrics]\nlisten = \":9474\"\n" + minimal, func() *Config {
			c := withServices(minimalService())
			c.Metrics.Listen = ":9474"
			return c
		}()},
		{"host address kept", strings.Replace(minimal, "192.168.20.1/24", "192.168.20.77/24", 1), func() *Config {
			s := minimalService()
			s.VIPs = []netip.Prefix{netip.MustParsePrefix("192.168.20.77/24")}
			return withServices(s)
		}()},
		{"CRLF line endings", strings.ReplaceAll(minimal, "\n", "\r\n"), withServices(minimalService())},
		{"probe with defaults", minimal + "[service.probe]\nprivate_key_file = \"/etc/wgbird/probe.key\"\n", func() *Config {
			s := minimalService()
			s.Probe = &Probe{PrivateKeyFile: "/etc/wgbird/probe.key", Timeout: 250 * time.Millisecond}
			return withServices(s)
		}()},
		{"probe as an inline table, IPv6 endpoint", minimal + "probe = { private_key_file = \"/k\", endpoint = \"[::1]:51820\" }\n", func() *Config {
			s := minimalService()
			s.Probe = &Probe{PrivateKeyFile: "/k", Endpoint: "[::1]:51820", Timeout: 250 * time.Millisecond}
			return withServices(s)
		}()},
		{"short interval shrinks the probe timeout", minimal + "interval = \"100ms\"\n[service.probe]\nprivate_key_file = \"/k\"\n", func() *Config {
			s := shortInterval
			s.Probe = &Probe{PrivateKeyFile: "/k", Timeout: 50 * time.Millisecond}
			return withServices(s)
		}()},
		{"probe in the second service only", minimal + "[[service]]\ninterface = \"wg1\"\nvips = [\"10.8.0.1/16\"]\nprotocols = [\"wg1_vip4\"]\n[service.probe]\nprivate_key_file = \"/k1\"\n", func() *Config {
			s := minimalService()
			s.Name, s.Interface = "wg1", "wg1"
			s.VIPs = []netip.Prefix{netip.MustParsePrefix("10.8.0.1/16")}
			s.Protocols = []string{"wg1_vip4"}
			s.Probe = &Probe{PrivateKeyFile: "/k1", Timeout: 250 * time.Millisecond}
			return withServices(minimalService(), s)
		}()},
		{"empty hook command is off", "[hook]\ncommand = []\n" + minimal, withServices(minimalService())},
		{"hook with defaults", "[hook]\ncommand = [\"/usr/local/bin/hook\"]\n" + minimal, func() *Config {
			c := withServices(minimalService())
			c.Hook.Command = []string{"/usr/local/bin/hook"}
			return c
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(file, []byte(tt.doc))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string
	}{
		// TOML itself.
		{"syntax error", "[bird]\nsocket = \n", "/etc/wgbird/wgbird.toml:2: invalid TOML at column 10: unexpected character U+000A at start of value"},
		{"unclosed table", "[bird\n", "/etc/wgbird/wgbird.toml:1: invalid TOML at column 6: expected ']' to close table name"},
		{"unterminated string", "[bird]\nsocket = \"/run/bird", "/etc/wgbird/wgbird.toml:2: invalid TOML at column 19: unterminated basic string"},
		{"key defined twice", "[bird]\nsocket = \"/a\"\nsocket = \"/b\"\n", "/etc/wgbird/wgbird.toml:3: bird.socket: invalid TOML: key socket is already defined"},
		{"table defined twice", "[bird]\n[bird]\n", "/etc/wgbird/wgbird.toml:2: bird: invalid TOML: table bird already exists"},
		{"integer too large", minimal + "rise = 99999999999999999999\n", "/etc/wgbird/wgbird.toml:5: service[1].rise: invalid TOML: decimal number is too large to fit in a 64-bit signed integer"},

		// Unknown keys.
		{"unknown key at top level", "foo = 1\n" + minimal, "/etc/wgbird/wgbird.toml:1: foo: unknown key (known keys: bird, control, shutdown, metrics, hook, service)"},
		{"unknown table", "[birdd]\nsocket = \"/run/bird/bird.ctl\"\n" + minimal, "/etc/wgbird/wgbird.toml:1: birdd: unknown key (known keys: bird, control, shutdown, metrics, hook, service)"},
		{"unknown key in bird", "[bird]\nsockett = \"/run/bird/bird.ctl\"\n" + minimal, "/etc/wgbird/wgbird.toml:2: bird.sockett: unknown key (known keys: socket, timeout)"},
		{"unknown key in service", minimal + "intervall = \"1s\"\n", "/etc/wgbird/wgbird.toml:5: service[1].intervall: unknown key (known keys: name, interface, vips, protocols, interval, fast_interval, liveness_interval, timeout, rise, fall, listen_port, min_peers, max_handshake_age, quiet_period, vip_source, vip_source_table, takeover, group, group_port, group_secret_file, exec, probe)"},
		{"unknown key in exec", minimal + "[[service.exec]]\ncommand = [\"/bin/true\"]\ncmd = \"x\"\n", "/etc/wgbird/wgbird.toml:7: service[1].exec[1].cmd: unknown key (known keys: name, command, timeout)"},
		{"unknown dotted key in second service", minimal + "[[service]]\ninterface = \"wg1\"\nvips = [\"192.168.21.1/24\"]\nprotocols = [\"wg_vip5\"]\nfoo.bar = 1\n", "/etc/wgbird/wgbird.toml:9: service[2].foo: unknown key (known keys: name, interface, vips, protocols, interval, fast_interval, liveness_interval, timeout, rise, fall, listen_port, min_peers, max_handshake_age, quiet_period, vip_source, vip_source_table, takeover, group, group_port, group_secret_file, exec, probe)"},
		{"unknown key in inline table", "service = [{ interface = \"wg0\", vips = [\"192.168.20.1/24\"], protocols = [\"wg_vip4\"], x = 1 }]\n", "/etc/wgbird/wgbird.toml:1: service[1].x: unknown key (known keys: name, interface, vips, protocols, interval, fast_interval, liveness_interval, timeout, rise, fall, listen_port, min_peers, max_handshake_age, quiet_period, vip_source, vip_source_table, takeover, group, group_port, group_secret_file, exec, probe)"},

		// Wrong types.
		{"rise is a string", minimal + "rise = \"three\"\n", "/etc/wgbird/wgbird.toml:5: service[1].rise: must be an integer, got string"},
		{"interface is an integer", "[[service]]\ninterface = 0\nvips = [\"192.168.20.1/24\"]\nprotocols = [\"wg_vip4\"]\n", "/etc/wgbird/wgbird.toml:2: service[1].interface: must be a string, got integer"},
		{"vips is a string", "[[service]]\ninterface = \"wg0\"\nvips = \"192.168.20.1/24\"\nprotocols = [\"wg_vip4\"]\n", "/etc/wgbird/wgbird.toml:3: service[1].vips: must be an array of strings, got string"},
		{"vip is an integer", "[[service]]\ninterface = \"wg0\"\nvips = [\n  \"192.168.20.1/24\",\n  42,\n]\nprotocols = [\"wg_vip4\"]\n", "/etc/wgbird/wgbird.toml:5: service[1].vips[2]: must be a string, got integer"},
		{"listen_port is a float", minimal + "listen_port = 51820.0\n", "/etc/wgbird/wgbird.toml:5: service[1].listen_port: must be an integer, got float"},
		{"name is a boolean", minimal + "name = true\n", "/etc/wgbird/wgbird.toml:5: service[1].name: must be a string, got boolean"},
		{"bird is a string", "bird = \"/run/bird/bird.ctl\"\n" + minimal, "/etc/wgbird/wgbird.toml:1: bird: must be a table, got string"},
		{"service is a table", "[service]\ninterface = \"wg0\"\nvips = [\"192.168.20.1/24\"]\nprotocols = [\"wg_vip4\"]\n", "/etc/wgbird/wgbird.toml:1: service: must be an array of tables ([[service]]), got table"},
		{"exec is a string", minimal + "exec = \"/bin/true\"\n", "/etc/wgbird/wgbird.toml:5: service[1].exec: must be an array of tables ([[service.exec]]), got string"},
		{"duration is an integer", minimal + "interval = 5\n", "/etc/wgbird/wgbird.toml:5: service[1].interval: must be a duration string such as \"2s\", got integer"},
		{"timeout is a date", "[bird]\ntimeout = 2024-01-01\n" + minimal, "/etc/wgbird/wgbird.toml:2: bird.timeout: must be a duration string such as \"2s\", got date"},

		// Durations.
		{"bad duration", minimal + "interval = \"1 s\"\n", "/etc/wgbird/wgbird.toml:5: service[1].interval: invalid duration \"1 s\" (want Go syntax such as \"250ms\", \"2s\" or \"1m30s\")"},
		{"duration without unit", minimal + "quiet_period = \"10\"\n", "/etc/wgbird/wgbird.toml:5: service[1].quiet_period: invalid duration \"10\" (want Go syntax such as \"250ms\", \"2s\" or \"1m30s\")"},
		{"negative duration", minimal + "max_handshake_age = \"-1s\"\n", "/etc/wgbird/wgbird.toml:5: service[1].max_handshake_age: must not be negative, got -1s"},
		{"interval too short", minimal + "interval = \"5ms\"\n", "/etc/wgbird/wgbird.toml:5: service[1].interval: must be at least 10ms, got 5ms"},
		{"zero timeout", minimal + "timeout = \"0s\"\n", "/etc/wgbird/wgbird.toml:5: service[1].timeout: must be positive, got 0s"},
		{"timeout equal to interval", minimal + "interval = \"500ms\"\ntimeout = \"500ms\"\n", "/etc/wgbird/wgbird.toml:6: service[1].timeout: must be less than interval (500ms), got 500ms"},
		{"timeout above default interval", minimal + "timeout = \"2s\"\n", "/etc/wgbird/wgbird.toml:5: service[1].timeout: must be less than interval (1s), got 2s"},
		{"liveness_interval above interval", minimal + "interval = \"300ms\"\nliveness_interval = \"400ms\"\n", "/etc/wgbird/wgbird.toml:6: service[1].liveness_interval: must not exceed interval (300ms), got 400ms"},
		{"zero liveness_interval", minimal + "liveness_interval = \"0s\"\n", "/etc/wgbird/wgbird.toml:5: service[1].liveness_interval: must be positive, got 0s"},
		{"fast_interval above interval", minimal + "fast_interval = \"2s\"\n", "/etc/wgbird/wgbird.toml:5: service[1].fast_interval: must not exceed interval (1s), got 2s"},
		{"zero quiet_period", minimal + "quiet_period = \"0s\"\n", "/etc/wgbird/wgbird.toml:5: service[1].quiet_period: must be positive, got 0s"},
		{"group member not an address", minimal + "group = [\"10.0.5.1\", \"server7\"]\n", "/etc/wgbird/wgbird.toml:5: service[1].group: member 2: \"server7\" is not an IP address (want such as \"10.0.5.1\")"},
		{"group member twice", minimal + "group = [\"10.0.5.1\", \"::ffff:10.0.5.1\"]\n", "/etc/wgbird/wgbird.toml:5: service[1].group: member 10.0.5.1 listed twice"},
		{"group port is the listen port", minimal + "listen_port = 51871\n", "/etc/wgbird/wgbird.toml:5: service[1].listen_port: must differ from service[1].group_port (51871): the group needs a port of its own"},
		{"vip_source_table main", minimal + "vip_source_table = 254\n", "/etc/wgbird/wgbird.toml:5: service[1].vip_source_table: must not be the kernel's default, main or local table (253-255), got 254"},
		{"takeover not a boolean", minimal + "takeover = \"yes\"\n", "/etc/wgbird/wgbird.toml:5: service[1].takeover: must be true or false, got string"},
		{"zero bird timeout", "[bird]\ntimeout = \"0s\"\n" + minimal, "/etc/wgbird/wgbird.toml:2: bird.timeout: must be positive, got 0s"},
		{"negative shutdown delay", "[shutdown]\ndelay = \"-2s\"\n" + minimal, "/etc/wgbird/wgbird.toml:2: shutdown.delay: must not be negative, got -2s"},

		// Integers.
		{"rise 0", minimal + "rise = 0\n", "/etc/wgbird/wgbird.toml:5: service[1].rise: must be at least 1, got 0"},
		{"fall 101", minimal + "fall = 101\n", "/etc/wgbird/wgbird.toml:5: service[1].fall: must be at most 100, got 101"},
		{"listen_port 65536", minimal + "listen_port = 65536\n", "/etc/wgbird/wgbird.toml:5: service[1].listen_port: must be at most 65535, got 65536"},
		{"min_peers -1", minimal + "min_peers = -1\n", "/etc/wgbird/wgbird.toml:5: service[1].min_peers: must be at least 0, got -1"},

		// VIPs.
		{"bad VIP", strings.Replace(minimal, "192.168.20.1/24", "192.168.300.1/24", 1), "/etc/wgbird/wgbird.toml:3: service[1].vips[1]: invalid VIP \"192.168.300.1/24\": IPv4 field has value >255"},
		{"VIP with a zone", strings.Replace(minimal, "192.168.20.1/24", "fe80::1%wg0/64", 1), "/etc/wgbird/wgbird.toml:3: service[1].vips[1]: invalid VIP \"fe80::1%wg0/64\": IPv6 zones cannot be present in a prefix"},
		{"VIP with a bad prefix length", strings.Replace(minimal, "192.168.20.1/24", "192.168.20.1/x", 1), "/etc/wgbird/wgbird.toml:3: service[1].vips[1]: invalid VIP \"192.168.20.1/x\": bad bits after slash: \"x\""},
		{"VIP is a host name", strings.Replace(minimal, "192.168.20.1/24", "vpn.example.org", 1), "/etc/wgbird/wgbird.toml:3: service[1].vips[1]: invalid VIP \"vpn.example.org\": want an address with a prefix length, such as \"192.168.20.1/24\""},
		{"VIP without prefix length", strings.Replace(minimal, "192.168.20.1/24", "192.168.20.1", 1), "/etc/wgbird/wgbird.toml:3: service[1].vips[1]: invalid VIP \"192.168.20.1\": missing prefix length, such as \"192.168.20.1/24\""},
		{"IPv6 VIP without prefix length", strings.Replace(minimal, `"192.168.20.1/24"`, `"192.168.20.1/24", "fd00::1"`, 1), "/etc/wgbird/wgbird.toml:3: service[1].vips[2]: invalid VIP \"fd00::1\": missing prefix length, such as \"fd00::1/64\""},
		{"VIP prefix too long", strings.Replace(minimal, "192.168.20.1/24", "192.168.20.1/33", 1), "/etc/wgbird/wgbird.toml:3: service[1].vips[1]: invalid VIP \"192.168.20.1/33\": prefix length out of range"},
		{"duplicate VIP", strings.Replace(minimal, `"192.168.20.1/24"`, `"192.168.20.1/24", "192.168.20.1/32"`, 1), "/etc/wgbird/wgbird.toml:3: service[1].vips[2]: duplicate VIP address 192.168.20.1, also at service[1].vips[1]"},
		{"no VIP", strings.Replace(minimal, `"192.168.20.1/24"`, "", 1), "/etc/wgbird/wgbird.toml:3: service[1].vips: must list at least one VIP, such as \"192.168.20.1/24\""},

		// Interfaces and names.
		{"interface too long", strings.Replace(minimal, `"wg0"`, `"wireguard-server0"`, 1), "/etc/wgbird/wgbird.toml:2: service[1].interface: invalid interface name \"wireguard-server0\": 17 bytes, at most 15"},
		{"interface with slash", strings.Replace(minimal, `"wg0"`, `"wg/0"`, 1), "/etc/wgbird/wgbird.toml:2: service[1].interface: invalid interface name \"wg/0\": must not contain '/', ':' or whitespace"},
		{"interface empty", strings.Replace(minimal, `"wg0"`, `""`, 1), "/etc/wgbird/wgbird.toml:2: service[1].interface: must not be empty"},
		{"interface with space", strings.Replace(minimal, `"wg0"`, `"wg 0"`, 1), "/etc/wgbird/wgbird.toml:2: service[1].interface: invalid interface name \"wg 0\": must not contain '/', ':' or whitespace"},
		{"interface dot-dot", strings.Replace(minimal, `"wg0"`, `".."`, 1), "/etc/wgbird/wgbird.toml:2: service[1].interface: invalid interface name \"..\""},
		{"interface not a name", strings.Replace(minimal, `"wg0"`, `"wg@0"`, 1), "/etc/wgbird/wgbird.toml:2: service[1].interface: \"wg@0\" cannot be the service name (want 1 to 64 characters of A-Z a-z 0-9 _ . -); set name"},
		{"bad name", minimal + "name = \"my vpn\"\n", "/etc/wgbird/wgbird.toml:5: service[1].name: invalid name \"my vpn\": want 1 to 64 characters of A-Z a-z 0-9 _ . -"},
		{"duplicate service name", minimal + "name = \"vpn\"\n" + strings.ReplaceAll(strings.ReplaceAll(minimal, "wg0", "wg1"), "wg_vip4", "wg_vip5") + "name = \"vpn\"\n", "/etc/wgbird/wgbird.toml:10: service[2].name: duplicate service name \"vpn\", also at service[1].name"},
		{"duplicate default service name", minimal + strings.ReplaceAll(minimal, "wg_vip4", "wg_vip5"), "/etc/wgbird/wgbird.toml:6: service[2].interface: duplicate service name \"wg0\" (the name defaults to the interface), also at service[1]; set a unique name"},

		// Protocols.
		{"protocol with dash", strings.Replace(minimal, "wg_vip4", "wg-vip4", 1), "/etc/wgbird/wgbird.toml:4: service[1].protocols[1]: invalid BIRD protocol name \"wg-vip4\": want a letter or '_' then letters, digits or '_', at most 64 characters"},
		{"protocol starting with a digit", strings.Replace(minimal, "wg_vip4", "1abc", 1), "/etc/wgbird/wgbird.toml:4: service[1].protocols[1]: invalid BIRD protocol name \"1abc\": want a letter or '_' then letters, digits or '_', at most 64 characters"},
		{"protocol with space", strings.Replace(minimal, "wg_vip4", "x y", 1), "/etc/wgbird/wgbird.toml:4: service[1].protocols[1]: invalid BIRD protocol name \"x y\": want a letter or '_' then letters, digits or '_', at most 64 characters"},
		{"protocol too long", strings.Replace(minimal, "wg_vip4", strings.Repeat("p", 65), 1), "/etc/wgbird/wgbird.toml:4: service[1].protocols[1]: invalid BIRD protocol name \"ppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp\": want a letter or '_' then letters, digits or '_', at most 64 characters"},
		{"no protocol", strings.Replace(minimal, `"wg_vip4"`, "", 1), "/etc/wgbird/wgbird.toml:4: service[1].protocols: must list at least one BIRD protocol, such as \"wg_vip4\""},
		{"duplicate protocol in a service", strings.Replace(minimal, `"wg_vip4"`, `"wg_vip4", "wg_vip4"`, 1), "/etc/wgbird/wgbird.toml:4: service[1].protocols[2]: duplicate protocol \"wg_vip4\", also at service[1].protocols[1]"},
		{"duplicate protocol across services", minimal + strings.ReplaceAll(minimal, "wg0", "wg1"), "/etc/wgbird/wgbird.toml:8: service[2].protocols[1]: duplicate protocol \"wg_vip4\", also at service[1].protocols[1]"},

		// Services.
		{"no service", "", "/etc/wgbird/wgbird.toml: service: at least one [[service]] is required"},
		{"no service, only bird", "[bird]\nsocket = \"/run/bird/bird.ctl\"\n", "/etc/wgbird/wgbird.toml: service: at least one [[service]] is required"},
		{"empty service array", "service = []\n", "/etc/wgbird/wgbird.toml:1: service: at least one [[service]] is required"},
		{"missing interface", "[[service]]\nvips = [\"192.168.20.1/24\"]\nprotocols = [\"wg_vip4\"]\n", "/etc/wgbird/wgbird.toml:1: service[1]: missing required key \"interface\""},
		{"missing vips", "[[service]]\ninterface = \"wg0\"\nprotocols = [\"wg_vip4\"]\n", "/etc/wgbird/wgbird.toml:1: service[1]: missing required key \"vips\""},
		{"missing protocols", "[[service]]\ninterface = \"wg0\"\nvips = [\"192.168.20.1/24\"]\n", "/etc/wgbird/wgbird.toml:1: service[1]: missing required key \"protocols\""},
		{"empty service", "[[service]]\n", "/etc/wgbird/wgbird.toml:1: service[1]: missing required key \"interface\""},

		// Exec checks.
		{"exec without command", minimal + "[[service.exec]]\nname = \"dns\"\n", "/etc/wgbird/wgbird.toml:5: service[1].exec[1]: missing required key \"command\""},
		{"exec with empty command", minimal + "[[service.exec]]\ncommand = []\n", "/etc/wgbird/wgbird.toml:6: service[1].exec[1].command: must not be empty: want the program and its arguments, such as [\"/usr/local/bin/check\", \"wg0\"]"},
		{"exec with empty program", minimal + "[[service.exec]]\ncommand = [\"\", \"x\"]\n", "/etc/wgbird/wgbird.toml:6: service[1].exec[1].command[1]: the program must not be empty"},
		{"exec with zero timeout", minimal + "[[service.exec]]\ncommand = [\"/bin/true\"]\ntimeout = \"0s\"\n", "/etc/wgbird/wgbird.toml:7: service[1].exec[1].timeout: must be positive, got 0s"},
		{"duplicate exec name", minimal + "[[service.exec]]\nname = \"dns\"\ncommand = [\"/bin/true\"]\n[[service.exec]]\nname = \"dns\"\ncommand = [\"/bin/true\"]\n", "/etc/wgbird/wgbird.toml:9: service[1].exec[2].name: duplicate exec name \"dns\", also at service[1].exec[1].name"},
		{"exec name clashing with a default", minimal + "[[service.exec]]\nname = \"exec2\"\ncommand = [\"/bin/true\"]\n[[service.exec]]\ncommand = [\"/bin/true\"]\n", "/etc/wgbird/wgbird.toml:8: service[1].exec[2]: duplicate exec name \"exec2\" (the default for this position), also at service[1].exec[1].name; set a unique name"},
		{"bad exec name", minimal + "[[service.exec]]\nname = \"\"\ncommand = [\"/bin/true\"]\n", "/etc/wgbird/wgbird.toml:6: service[1].exec[1].name: invalid name \"\": want 1 to 64 characters of A-Z a-z 0-9 _ . -"},

		// Shutdown, control, metrics, bird.
		{"bad on_stop", "[shutdown]\non_stop = \"stay\"\n" + minimal, "/etc/wgbird/wgbird.toml:2: shutdown.on_stop: must be \"withdraw\" or \"keep\", got \"stay\""},
		{"bad on_system_shutdown", "[shutdown]\non_system_shutdown = \"Withdraw\"\n" + minimal, "/etc/wgbird/wgbird.toml:2: shutdown.on_system_shutdown: must be \"withdraw\" or \"keep\", got \"Withdraw\""},
		{"metrics listen without port", "[metrics]\nlisten = \"9474\"\n" + minimal, "/etc/wgbird/wgbird.toml:2: metrics.listen: invalid address \"9474\": want host:port such as \"127.0.0.1:9474\" or \":9474\""},
		{"metrics listen port 0", "[metrics]\nlisten = \"127.0.0.1:0\"\n" + minimal, "/etc/wgbird/wgbird.toml:2: metrics.listen: invalid port \"0\" in \"127.0.0.1:0\": want a number from 1 to 65535"},
		{"metrics listen named port", "[metrics]\nlisten = \"localhost:http\"\n" + minimal, "/etc/wgbird/wgbird.toml:2: metrics.listen: invalid port \"http\" in \"localhost:http\": want a number from 1 to 65535"},
		{"metrics listen bad host", "[metrics]\nlisten = \"local_host:9474\"\n" + minimal, "/etc/wgbird/wgbird.toml:2: metrics.listen: invalid host \"local_host\" in \"local_host:9474\": want host:port such as \"127.0.0.1:9474\" or \":9474\""},
		{"relative bird socket", "[bird]\nsocket = \"bird.ctl\"\n" + minimal, "/etc/wgbird/wgbird.toml:2: bird.socket: must be an absolute path, got \"bird.ctl\""},
		{"control socket too long", "[control]\nsocket = \"/run/" + strings.Repeat("x", 104) + "\"\n" + minimal, "/etc/wgbird/wgbird.toml:2: control.socket: is too long for a unix socket: 109 bytes, at most 107"},
		{"control socket is bird's", "[control]\nsocket = \"/run/bird/bird.ctl\"\n" + minimal, "/etc/wgbird/wgbird.toml:2: control.socket: must differ from bird.socket (/run/bird/bird.ctl)"},
		{"state_dir equals runtime_dir", "[control]\nstate_dir = \"/run/wgbird\"\n" + minimal, "/etc/wgbird/wgbird.toml:2: control.state_dir: must differ from control.runtime_dir (/run/wgbird): one keeps drains across reboots, the other does not"},
		{"runtime_dir equals state_dir", "[control]\nstate_dir = \"/var/lib/wgbird\"\nruntime_dir = \"/var/lib/wgbird\"\n" + minimal, "/etc/wgbird/wgbird.toml:3: control.runtime_dir: must differ from control.state_dir (/var/lib/wgbird): one keeps drains across reboots, the other does not"},
		{"bird socket is wgbird's", "[bird]\nsocket = \"/run/wgbird/wgbird.sock\"\n" + minimal, "/etc/wgbird/wgbird.toml:2: bird.socket: must differ from control.socket (/run/wgbird/wgbird.sock)"},
		{"bad group", "[control]\ngroup = \"wg bird\"\n" + minimal, "/etc/wgbird/wgbird.toml:2: control.group: invalid group \"wg bird\": must not contain whitespace, control characters, ':', ',' or '/'"},

		// Probe.
		{"probe without private_key_file", minimal + "[service.probe]\ntimeout = \"100ms\"\n", "/etc/wgbird/wgbird.toml:5: service[1].probe: missing required key \"private_key_file\""},
		{"probe key file relative", minimal + "[service.probe]\nprivate_key_file = \"probe.key\"\n", "/etc/wgbird/wgbird.toml:6: service[1].probe.private_key_file: must be an absolute path, got \"probe.key\""},
		{"probe psk file relative", minimal + "[service.probe]\nprivate_key_file = \"/k\"\npreshared_key_file = \"psk\"\n", "/etc/wgbird/wgbird.toml:7: service[1].probe.preshared_key_file: must be an absolute path, got \"psk\""},
		{"unknown key in probe", minimal + "[service.probe]\nprivate_key_file = \"/k\"\nkey = \"x\"\n", "/etc/wgbird/wgbird.toml:7: service[1].probe.key: unknown key (known keys: private_key_file, preshared_key_file, server_public_key, endpoint, timeout)"},
		{"probe is a string", minimal + "probe = \"/k\"\n", "/etc/wgbird/wgbird.toml:5: service[1].probe: must be a table, got string"},
		{"probe is an array of tables", minimal + "[[service.probe]]\nprivate_key_file = \"/k\"\n", "/etc/wgbird/wgbird.toml:5: service[1].probe: must be a table, got array"},
		{"probe server key not base64", minimal + "[service.probe]\nprivate_key_file = \"/k\"\nserver_public_key = \"not a key\"\n", "/etc/wgbird/wgbird.toml:7: service[1].probe.server_public_key: invalid WireGuard public key \"not a key\": not base64; want the 44 characters of base64 that wg pubkey prints"},
		{"probe server key too short", minimal + "[service.probe]\nprivate_key_file = \"/k\"\nserver_public_key = \"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eA==\"\n", "/etc/wgbird/wgbird.toml:7: service[1].probe.server_public_key: invalid WireGuard public key \"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eA==\": 31 bytes, want 32; want the 44 characters of base64 that wg pubkey prints"},
		{"probe server key without padding", minimal + "[service.probe]\nprivate_key_file = \"/k\"\nserver_public_key = \"SIiU/AB9IJaK3i+R9l42aWzMfoGbnGTU8zkCbVIg2kg\"\n", "/etc/wgbird/wgbird.toml:7: service[1].probe.server_public_key: invalid WireGuard public key \"SIiU/AB9IJaK3i+R9l42aWzMfoGbnGTU8zkCbVIg2kg\": not base64; want the 44 characters of base64 that wg pubkey prints"},
		{"probe endpoint is a host name", minimal + "[service.probe]\nprivate_key_file = \"/k\"\nendpoint = \"localhost:51820\"\n", "/etc/wgbird/wgbird.toml:7: service[1].probe.endpoint: invalid endpoint \"localhost:51820\": want address:port such as \"127.0.0.1:51820\" or \"[::1]:51820\""},
		{"probe endpoint without port", minimal + "[service.probe]\nprivate_key_file = \"/k\"\nendpoint = \"127.0.0.1\"\n", "/etc/wgbird/wgbird.toml:7: service[1].probe.endpoint: invalid endpoint \"127.0.0.1\": want address:port such as \"127.0.0.1:51820\" or \"[::1]:51820\""},
		{"probe endpoint port 0", minimal + "[service.probe]\nprivate_key_file = \"/k\"\nendpoint = \"127.0.0.1:0\"\n", "/etc/wgbird/wgbird.toml:7: service[1].probe.endpoint: invalid endpoint \"127.0.0.1:0\": want a port from 1 to 65535"},
		{"probe zero timeout", minimal + "[service.probe]\nprivate_key_file = \"/k\"\ntimeout = \"0s\"\n", "/etc/wgbird/wgbird.toml:7: service[1].probe.timeout: must be positive, got 0s"},
		{"probe timeout equal to interval", minimal + "interval = \"200ms\"\n[service.probe]\nprivate_key_file = \"/k\"\ntimeout = \"200ms\"\n", "/etc/wgbird/wgbird.toml:8: service[1].probe.timeout: must be less than interval (200ms), got 200ms"},

		// Hook.
		{"hook with empty program", "[hook]\ncommand = [\"\", \"x\"]\n" + minimal, "/etc/wgbird/wgbird.toml:2: hook.command[1]: the program must not be empty"},
		{"hook command is a string", "[hook]\ncommand = \"/bin/hook\"\n" + minimal, "/etc/wgbird/wgbird.toml:2: hook.command: must be an array of strings, got string"},
		{"hook zero timeout", "[hook]\ncommand = [\"/bin/hook\"]\ntimeout = \"0s\"\n" + minimal, "/etc/wgbird/wgbird.toml:3: hook.timeout: must be positive, got 0s"},
		{"unknown key in hook", "[hook]\nrun = [\"/bin/hook\"]\n" + minimal, "/etc/wgbird/wgbird.toml:2: hook.run: unknown key (known keys: command, timeout)"},
		{"hook is an array", "hook = [\"/bin/hook\"]\n" + minimal, "/etc/wgbird/wgbird.toml:1: hook: must be a table, got array"},

		// The first error in the file wins.
		{"first of several errors", minimal + "rise = 0\nfall = 0\n", "/etc/wgbird/wgbird.toml:5: service[1].rise: must be at least 1, got 0"},
		{"error in second service", minimal + "[[service]]\ninterface = \"wg1\"\nvips = [\"192.168.21.1/24\"]\nprotocols = [\"wg_vip5\"]\nrise = 0\n", "/etc/wgbird/wgbird.toml:9: service[2].rise: must be at least 1, got 0"},
		{"error in a dotted key", "bird.timeout = \"soon\"\n" + minimal, "/etc/wgbird/wgbird.toml:1: bird.timeout: invalid duration \"soon\" (want Go syntax such as \"250ms\", \"2s\" or \"1m30s\")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse(file, []byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse = %+v, want error %q", cfg, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse error %T %v, want *Error", err, err)
			}
			if cfg != nil {
				t.Errorf("Parse returned a config with an error")
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "wgbird.toml")
	if err := os.WriteFile(good, []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(good)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if diff := cmp.Diff([]Service{minimalService()}, cfg.Services, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("Load services mismatch (-want +got):\n%s", diff)
	}

	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte(minimal+"rise = 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.toml")
	big := filepath.Join(dir, "big.toml")
	if err := os.WriteFile(big, []byte(minimal+"#"+strings.Repeat("x", maxFileSize)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path     string
		want     *Error
		notExist bool
	}{
		{bad, &Error{File: bad, Line: 5, Key: "service[1].rise", Msg: "must be at least 1, got 0"}, false},
		{missing, &Error{File: missing, Msg: "reading config: no such file or directory"}, true},
		{dir, &Error{File: dir, Msg: "reading config: is a directory"}, false},
		{big, &Error{File: big, Msg: "reading config: larger than 1048576 bytes"}, false},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			cfg, err := Load(tt.path)
			if err == nil {
				t.Fatalf("Load = %+v, want an error", cfg)
			}
			if !IsConfigError(err) {
				t.Errorf("IsConfigError(%v) = false, want true", err)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Load error %T, want *Error", err)
			}
			if diff := cmp.Diff(tt.want, e, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Err" }, cmp.Ignore())); diff != "" {
				t.Errorf("Load error mismatch (-want +got):\n%s", diff)
			}
			if got := errors.Is(err, fs.ErrNotExist); got != tt.notExist {
				t.Errorf("errors.Is(err, fs.ErrNotExist) = %v, want %v", got, tt.notExist)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{File: file, Line: 7, Key: "service[1].rise", Msg: "must be at least 1, got 0"}, "/etc/wgbird/wgbird.toml:7: service[1].rise: must be at least 1, got 0"},
		{&Error{File: file, Line: 2, Msg: "invalid TOML at column 3: x"}, "/etc/wgbird/wgbird.toml:2: invalid TOML at column 3: x"},
		{&Error{File: file, Key: "service", Msg: "at least one [[service]] is required"}, "/etc/wgbird/wgbird.toml: service: at least one [[service]] is required"},
		{&Error{File: file, Msg: "reading config: permission denied"}, "/etc/wgbird/wgbird.toml: reading config: permission denied"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	if IsConfigError(errors.New("other")) {
		t.Errorf("IsConfigError(plain error) = true, want false")
	}
}

func BenchmarkParse(b *testing.B) {
	data := []byte(full)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(file, data); err != nil {
			b.Fatal(err)
		}
	}
}
