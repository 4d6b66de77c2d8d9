package config

import (
	"encoding/base64"
	"fmt"
	"math"
	"net"
	"net/netip"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	toml "github.com/pelletier/go-toml/v2"
)

// maxUnixSocketPath is the longest path a unix socket can bind to on Linux
// (sun_path holds 108 bytes including the terminating NUL).
const maxUnixSocketPath = 107

// decoder turns the generic document into a Config, checking every key
// against the schema. It collects errors and reports the first one in the
// file.
type decoder struct {
	file string
	pos  *positionMap
	errs []*Error
}

func (d *decoder) errorf(key, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: d.pos.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// first returns the error on the earliest line; errors without a line come
// last; ties keep the order of detection.
func (d *decoder) first() error {
	if len(d.errs) == 0 {
		return nil
	}
	sort.SliceStable(d.errs, func(i, j int) bool {
		li, lj := d.errs[i].Line, d.errs[j].Line
		if li == 0 || lj == 0 {
			return lj == 0 && li != 0
		}
		return li < lj
	})
	return d.errs[0]
}

// kind names the TOML type of a decoded value.
func kind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case toml.LocalDate:
		return "date"
	case toml.LocalTime:
		return "time"
	case toml.LocalDateTime, time.Time:
		return "datetime"
	case []any:
		return "array"
	case map[string]any:
		return "table"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// table is one TOML table being decoded.
type table struct {
	d    *decoder
	path string
	m    map[string]any
}

// asTable checks that v is a table and that it has no key outside known.
func (d *decoder) asTable(path string, v any, known []string) (*table, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		d.errorf(path, "must be a table, got %s", kind(v))
		return nil, false
	}
	for k := range m {
		if !contains(known, k) {
			d.errorf(join(path, k), "unknown key (known keys: %s)", strings.Join(known, ", "))
		}
	}
	return &table{d: d, path: path, m: m}, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (t *table) key(k string) string { return join(t.path, k) }

func (t *table) has(k string) bool {
	_, ok := t.m[k]
	return ok
}

// str decodes a string key into *dst, if present. ok is false when the key
// is present but not a string.
func (t *table) str(k string, dst *string) (present, ok bool) {
	v, present := t.m[k]
	if !present {
		return false, true
	}
	s, ok := v.(string)
	if !ok {
		t.d.errorf(t.key(k), "must be a string, got %s", kind(v))
		return true, false
	}
	*dst = s
	return true, true
}

// integer decodes an integer key within [lo, hi] into *dst, if present.
func (t *table) integer(k string, dst *int, lo, hi int64) (present, ok bool) {
	v, present := t.m[k]
	if !present {
		return false, true
	}
	i, ok := v.(int64)
	switch {
	case !ok:
		t.d.errorf(t.key(k), "must be an integer, got %s", kind(v))
		return true, false
	case i < lo:
		t.d.errorf(t.key(k), "must be at least %d, got %d", lo, i)
		return true, false
	case i > hi:
		t.d.errorf(t.key(k), "must be at most %d, got %d", hi, i)
		return true, false
	}
	*dst = int(i)
	return true, true
}

// duration decodes a Go duration string of at least min into *dst, if
// present. Negative durations are always refused; positive demands > 0.
func (t *table) duration(k string, dst *time.Duration, min time.Duration, positive bool) (present, ok bool) {
	v, present := t.m[k]
	if !present {
		return false, true
	}
	s, ok := v.(string)
	if !ok {
		t.d.errorf(t.key(k), `must be a duration string such as "2s", got %s`, kind(v))
		return true, false
	}
	dur, err := time.ParseDuration(s)
	switch {
	case err != nil:
		t.d.errorf(t.key(k), `invalid duration %q (want Go syntax such as "250ms", "2s" or "1m30s")`, s)
		return true, false
	case dur < 0:
		t.d.errorf(t.key(k), "must not be negative, got %s", s)
		return true, false
	case positive && dur == 0:
		t.d.errorf(t.key(k), "must be positive, got %s", s)
		return true, false
	case dur < min:
		t.d.errorf(t.key(k), "must be at least %s, got %s", min, s)
		return true, false
	}
	*dst = dur
	return true, true
}

// strs decodes an array of strings. present is false when the key is
// absent; ok is false when it is present and malformed.
func (t *table) strs(k string) (list []string, present, ok bool) {
	v, present := t.m[k]
	if !present {
		return nil, false, true
	}
	arr, isArr := v.([]any)
	if !isArr {
		t.d.errorf(t.key(k), "must be an array of strings, got %s", kind(v))
		return nil, true, false
	}
	ok = true
	list = make([]string, 0, len(arr))
	for i, e := range arr {
		s, isStr := e.(string)
		if !isStr {
			t.d.errorf(index(t.key(k), i), "must be a string, got %s", kind(e))
			ok = false
			continue
		}
		list = append(list, s)
	}
	return list, true, ok
}

// path decodes an absolute filesystem path; socket paths must also fit in
// a unix socket address.
func (t *table) filePath(k string, dst *string, socket bool) {
	var s string
	if present, ok := t.str(k, &s); !present || !ok {
		return
	}
	switch {
	case !filepath.IsAbs(s):
		t.d.errorf(t.key(k), "must be an absolute path, got %q", s)
	case strings.IndexByte(s, 0) >= 0:
		t.d.errorf(t.key(k), "must not contain a NUL byte")
	case socket && len(s) > maxUnixSocketPath:
		t.d.errorf(t.key(k), "is too long for a unix socket: %d bytes, at most %d", len(s), maxUnixSocketPath)
	default:
		*dst = s
	}
}

var (
	topKeys      = []string{"bird", "control", "shutdown", "metrics", "hook", "service"}
	birdKeys     = []string{"socket", "timeout"}
	controlKeys  = []string{"socket", "group", "state_dir", "runtime_dir"}
	shutdownKeys = []string{"delay", "on_system_shutdown", "on_stop"}
	metricsKeys  = []string{"listen"}
	hookKeys     = []string{"command", "timeout"}
	serviceKeys  = []string{"name", "interface", "vips", "protocols", "interval", "fast_interval", "timeout",
		"rise", "fall", "listen_port", "min_peers", "max_handshake_age", "quiet_period", "exec", "probe"}
	execKeys  = []string{"name", "command", "timeout"}
	probeKeys = []string{"private_key_file", "preshared_key_file", "server_public_key", "endpoint", "timeout"}
)

func (d *decoder) config(doc tree) *Config {
	cfg := Default()
	top, _ := d.asTable("", map[string]any(doc), topKeys)

	if v, ok := top.m["bird"]; ok {
		if t, ok := d.asTable("bird", v, birdKeys); ok {
			t.filePath("socket", &cfg.BIRD.Socket, true)
			t.duration("timeout", &cfg.BIRD.Timeout, 0, true)
		}
	}
	if v, ok := top.m["control"]; ok {
		if t, ok := d.asTable("control", v, controlKeys); ok {
			d.control(t, &cfg.Control)
		}
	}
	if cfg.Control.Socket == cfg.BIRD.Socket {
		d.differ("control.socket", "bird.socket", cfg.BIRD.Socket, "")
	}
	if v, ok := top.m["shutdown"]; ok {
		if t, ok := d.asTable("shutdown", v, shutdownKeys); ok {
			t.duration("delay", &cfg.Shutdown.Delay, 0, false)
			t.choice("on_system_shutdown", &cfg.Shutdown.OnSystemShutdown)
			t.choice("on_stop", &cfg.Shutdown.OnStop)
		}
	}
	if v, ok := top.m["metrics"]; ok {
		if t, ok := d.asTable("metrics", v, metricsKeys); ok {
			var s string
			if present, ok := t.str("listen", &s); present && ok {
				if msg := checkListen(s); msg != "" {
					d.errorf(t.key("listen"), "%s", msg)
				} else {
					cfg.Metrics.Listen = s
				}
			}
		}
	}
	if v, ok := top.m["hook"]; ok {
		if t, ok := d.asTable("hook", v, hookKeys); ok {
			d.hook(t, &cfg.Hook)
		}
	}
	cfg.Services = d.services(top.m["service"])
	return &cfg
}

// hook decodes [hook]. An absent or empty command turns the hook off.
func (d *decoder) hook(t *table, h *Hook) {
	cmd, _, ok := t.strs("command")
	switch {
	case !ok || len(cmd) == 0:
	case cmd[0] == "":
		d.errorf(index(t.key("command"), 0), "the program must not be empty")
	default:
		h.Command = cmd
	}
	t.duration("timeout", &h.Timeout, 0, true)
}

func (d *decoder) control(t *table, c *Control) {
	t.filePath("socket", &c.Socket, true)
	if present, ok := t.str("group", &c.Group); present && ok && c.Group != "" {
		if msg := checkGroup(c.Group); msg != "" {
			d.errorf(t.key("group"), "%s", msg)
		}
	}
	t.filePath("state_dir", &c.StateDir, false)
	t.filePath("runtime_dir", &c.RuntimeDir, false)
	if c.StateDir == c.RuntimeDir {
		d.differ("control.runtime_dir", "control.state_dir", c.StateDir, ": one keeps drains across reboots, the other does not")
	}
}

// differ reports two keys that must not have the same value, at the first
// of them that is written in the file.
func (d *decoder) differ(a, b, value, why string) {
	if _, ok := d.pos.lines[a]; !ok {
		if _, ok := d.pos.lines[b]; ok {
			a, b = b, a
		}
	}
	d.errorf(a, "must differ from %s (%s)%s", b, value, why)
}

func (t *table) choice(k string, dst *string) {
	var s string
	if present, ok := t.str(k, &s); !present || !ok {
		return
	}
	if s != Withdraw && s != Keep {
		t.d.errorf(t.key(k), "must be %q or %q, got %q", Withdraw, Keep, s)
		return
	}
	*dst = s
}

// checkGroup accepts a group name or number the way it could appear in
// /etc/group; whether it exists is checked when the socket is created.
func checkGroup(g string) string {
	if len(g) > 32 {
		return fmt.Sprintf("invalid group %q: longer than 32 bytes", g)
	}
	for _, r := range g {
		if r <= ' ' || r == 0x7f || r == ':' || r == '/' || r == ',' {
			return fmt.Sprintf("invalid group %q: must not contain whitespace, control characters, ':', ',' or '/'", g)
		}
	}
	return ""
}

// checkListen validates a metrics listen address: host:port, where host is
// empty (every address), an IP address or a host name, and port is 1..65535.
func checkListen(s string) string {
	if s == "" {
		return ""
	}
	const want = `want host:port such as "127.0.0.1:9474" or ":9474"`
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Sprintf("invalid address %q: %s", s, want)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '+' {
		return fmt.Sprintf("invalid port %q in %q: want a number from 1 to 65535", port, s)
	}
	if host == "" {
		return ""
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return ""
	}
	if !validHostname(host) {
		return fmt.Sprintf("invalid host %q in %q: %s", host, s, want)
	}
	return ""
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// services decodes the [[service]] array and checks what must be unique
// across services.
func (d *decoder) services(v any) []Service {
	if v == nil {
		d.errorf("service", "at least one [[service]] is required")
		return nil
	}
	arr, ok := v.([]any)
	if !ok {
		d.errorf("service", "must be an array of tables ([[service]]), got %s", kind(v))
		return nil
	}
	if len(arr) == 0 {
		d.errorf("service", "at least one [[service]] is required")
		return nil
	}
	out := make([]Service, 0, len(arr))
	names := map[string]string{}     // service name → where it was set
	protocols := map[string]string{} // protocol → key
	for i, e := range arr {
		path := index("service", i)
		s, nameKey := d.service(path, e)
		out = append(out, s)
		if s.Name != "" {
			if where, dup := names[s.Name]; !dup {
				names[s.Name] = nameKey
			} else if nameKey == path {
				d.errorf(join(path, "interface"), "duplicate service name %q (the name defaults to the interface), also at %s; set a unique name", s.Name, where)
			} else {
				d.errorf(nameKey, "duplicate service name %q, also at %s", s.Name, where)
			}
		}
		for j, p := range s.Protocols {
			key := index(join(path, "protocols"), j)
			if !validSymbol(p) {
				continue // already reported
			}
			if where, dup := protocols[p]; dup {
				d.errorf(key, "duplicate protocol %q, also at %s", p, where)
				continue
			}
			protocols[p] = key
		}
	}
	return out
}

// service decodes one [[service]]. nameKey is where its name was set: the
// name key, or the service itself when the name defaults to the interface.
func (d *decoder) service(path string, v any) (s Service, nameKey string) {
	s = Service{
		Interval:    DefaultInterval,
		Rise:        DefaultRise,
		Fall:        DefaultFall,
		MinPeers:    DefaultMinPeers,
		QuietPeriod: DefaultQuietPeriod,
	}
	t, ok := d.asTable(path, v, serviceKeys)
	if !ok {
		return s, path
	}
	required := func(k string) bool {
		if !t.has(k) {
			d.errorf(path, "missing required key %q", k)
			return false
		}
		return true
	}

	if required("interface") {
		if _, ok := t.str("interface", &s.Interface); ok {
			if msg := checkInterface(s.Interface); msg != "" {
				d.errorf(t.key("interface"), "%s", msg)
				s.Interface = ""
			}
		}
	}

	nameKey = path
	if t.has("name") {
		nameKey = t.key("name")
		if _, ok := t.str("name", &s.Name); ok && !validName(s.Name) {
			d.errorf(nameKey, "invalid name %q: want 1 to 64 characters of A-Z a-z 0-9 _ . -", s.Name)
			s.Name = ""
		}
	} else if s.Interface != "" {
		if validName(s.Interface) {
			s.Name = s.Interface
		} else {
			d.errorf(t.key("interface"), "%q cannot be the service name (want 1 to 64 characters of A-Z a-z 0-9 _ . -); set name", s.Interface)
		}
	}

	if required("vips") {
		if list, _, ok := t.strs("vips"); ok {
			s.VIPs = d.vips(t.key("vips"), list)
		}
	}
	if required("protocols") {
		if list, _, ok := t.strs("protocols"); ok {
			s.Protocols = d.protocols(t.key("protocols"), list)
		}
	}

	_, intervalOK := t.duration("interval", &s.Interval, MinInterval, true)
	// The defaults shrink with a short interval; explicit values must fit.
	s.FastInterval = min(DefaultFastInterval, s.Interval)
	s.Timeout = min(DefaultTimeout, s.Interval/2)
	if present, ok := t.duration("fast_interval", &s.FastInterval, 0, true); present && ok && intervalOK && s.FastInterval > s.Interval {
		d.errorf(t.key("fast_interval"), "must not exceed interval (%s), got %s", s.Interval, s.FastInterval)
	}
	if present, ok := t.duration("timeout", &s.Timeout, 0, true); present && ok && intervalOK && s.Timeout >= s.Interval {
		d.errorf(t.key("timeout"), "must be less than interval (%s), got %s", s.Interval, s.Timeout)
	}

	t.integer("rise", &s.Rise, 1, 100)
	t.integer("fall", &s.Fall, 1, 100)
	t.integer("listen_port", &s.ListenPort, 0, 65535)
	t.integer("min_peers", &s.MinPeers, 0, math.MaxInt32)
	t.duration("max_handshake_age", &s.MaxHandshakeAge, 0, false)
	t.duration("quiet_period", &s.QuietPeriod, 0, true)

	if v, ok := t.m["exec"]; ok {
		s.Exec = d.execs(t.key("exec"), v)
	}
	if v, ok := t.m["probe"]; ok {
		s.Probe = d.probe(t.key("probe"), v, s.Interval, intervalOK)
	}
	return s, nameKey
}

// probe decodes [service.probe]. Whether the key files exist and are
// private is checked when the daemon starts, not here.
func (d *decoder) probe(key string, v any, interval time.Duration, intervalOK bool) *Probe {
	p := &Probe{Timeout: min(DefaultProbeTimeout, interval/2)}
	t, ok := d.asTable(key, v, probeKeys)
	if !ok {
		return nil
	}
	if !t.has("private_key_file") {
		d.errorf(key, "missing required key %q", "private_key_file")
	}
	t.filePath("private_key_file", &p.PrivateKeyFile, false)
	t.filePath("preshared_key_file", &p.PresharedKeyFile, false)
	var s string
	if present, ok := t.str("server_public_key", &s); present && ok {
		if msg := checkPublicKey(s); msg != "" {
			d.errorf(t.key("server_public_key"), "%s", msg)
		} else {
			p.ServerPublicKey = s
		}
	}
	if present, ok := t.str("endpoint", &s); present && ok {
		if msg := checkEndpoint(s); msg != "" {
			d.errorf(t.key("endpoint"), "%s", msg)
		} else {
			p.Endpoint = s
		}
	}
	if present, ok := t.duration("timeout", &p.Timeout, 0, true); present && ok && intervalOK && p.Timeout >= interval {
		d.errorf(t.key("timeout"), "must be less than interval (%s), got %s", interval, p.Timeout)
	}
	return p
}

// checkPublicKey accepts a WireGuard public key as wg(8) prints it: 32
// bytes in standard base64.
func checkPublicKey(s string) string {
	const want = "want the 44 characters of base64 that wg pubkey prints"
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	switch {
	case err != nil:
		return fmt.Sprintf("invalid WireGuard public key %q: not base64; %s", s, want)
	case len(b) != 32:
		return fmt.Sprintf("invalid WireGuard public key %q: %d bytes, want 32; %s", s, len(b), want)
	}
	return ""
}

// checkEndpoint accepts an IP address and a port 1..65535: the probe sends
// to an address, never resolves a name.
func checkEndpoint(s string) string {
	ap, err := netip.ParseAddrPort(s)
	switch {
	case err != nil:
		return fmt.Sprintf(`invalid endpoint %q: want address:port such as "127.0.0.1:51820" or "[::1]:51820"`, s)
	case ap.Port() == 0:
		return fmt.Sprintf("invalid endpoint %q: want a port from 1 to 65535", s)
	}
	return ""
}

// checkInterface applies the kernel's rules for a network device name
// (dev_valid_name): 1 to 15 bytes, not "." or "..", no '/', ':' or
// whitespace.
func checkInterface(name string) string {
	switch {
	case name == "":
		return "must not be empty"
	case len(name) > 15:
		return fmt.Sprintf("invalid interface name %q: %d bytes, at most 15", name, len(name))
	case name == "." || name == "..":
		return fmt.Sprintf("invalid interface name %q", name)
	}
	for _, r := range name {
		if r == '/' || r == ':' || r == 0 || r == ' ' || r == '\t' || r == '\n' || r == '\v' || r == '\f' || r == '\r' {
			return fmt.Sprintf("invalid interface name %q: must not contain '/', ':' or whitespace", name)
		}
	}
	return ""
}

// validName reports whether s is a service or exec check name.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// validSymbol reports whether s is a BIRD symbol: [A-Za-z_][A-Za-z0-9_]*,
// at most 64 characters.
func validSymbol(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func (d *decoder) vips(key string, list []string) []netip.Prefix {
	if len(list) == 0 {
		d.errorf(key, `must list at least one VIP, such as "192.168.20.1/24"`)
		return nil
	}
	out := make([]netip.Prefix, 0, len(list))
	seen := map[netip.Addr]string{}
	for i, s := range list {
		k := index(key, i)
		p, err := netip.ParsePrefix(s)
		switch {
		case err != nil && !strings.Contains(s, "/"):
			if a, aerr := netip.ParseAddr(s); aerr == nil {
				example := s + "/24"
				if a.Is6() {
					example = s + "/64"
				}
				d.errorf(k, "invalid VIP %q: missing prefix length, such as %q", s, example)
			} else {
				d.errorf(k, "invalid VIP %q: want an address with a prefix length, such as \"192.168.20.1/24\"", s)
			}
			continue
		case err != nil:
			d.errorf(k, "invalid VIP %q: %s", s, prefixReason(err))
			continue
		}
		if where, dup := seen[p.Addr()]; dup {
			d.errorf(k, "duplicate VIP address %s, also at %s", p.Addr(), where)
			continue
		}
		seen[p.Addr()] = k
		out = append(out, p)
	}
	return out
}

// prefixReason extracts why netip.ParsePrefix refused a prefix, without the
// function names and the input its error repeats.
func prefixReason(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "): "); i >= 0 && i+3 < len(msg) {
		return msg[i+3:]
	}
	return `want an address with a prefix length, such as "192.168.20.1/24"`
}

func (d *decoder) protocols(key string, list []string) []string {
	if len(list) == 0 {
		d.errorf(key, `must list at least one BIRD protocol, such as "wg_vip4"`)
		return nil
	}
	for i, s := range list {
		if !validSymbol(s) {
			d.errorf(index(key, i), "invalid BIRD protocol name %q: want a letter or '_' then letters, digits or '_', at most 64 characters", s)
		}
	}
	// Duplicates, within the service and across services, are found by
	// the caller.
	return list
}

func (d *decoder) execs(key string, v any) []Exec {
	arr, ok := v.([]any)
	if !ok {
		d.errorf(key, "must be an array of tables ([[service.exec]]), got %s", kind(v))
		return nil
	}
	out := make([]Exec, 0, len(arr))
	names := map[string]string{} // exec name → where it was set
	for i, e := range arr {
		path := index(key, i)
		x := Exec{Name: fmt.Sprintf("exec%d", i+1), Timeout: DefaultExecTimeout}
		t, ok := d.asTable(path, e, execKeys)
		if !ok {
			out = append(out, x)
			continue
		}
		nameKey := path
		if t.has("name") {
			nameKey = t.key("name")
			if _, ok := t.str("name", &x.Name); ok && !validName(x.Name) {
				d.errorf(nameKey, "invalid name %q: want 1 to 64 characters of A-Z a-z 0-9 _ . -", x.Name)
			}
		}
		if where, dup := names[x.Name]; !dup {
			names[x.Name] = nameKey
		} else if nameKey == path {
			d.errorf(path, "duplicate exec name %q (the default for this position), also at %s; set a unique name", x.Name, where)
		} else {
			d.errorf(nameKey, "duplicate exec name %q, also at %s", x.Name, where)
		}

		cmd, present, ok := t.strs("command")
		switch {
		case !present:
			d.errorf(path, "missing required key %q", "command")
		case !ok:
		case len(cmd) == 0:
			d.errorf(t.key("command"), `must not be empty: want the program and its arguments, such as ["/usr/local/bin/check", "wg0"]`)
		case cmd[0] == "":
			d.errorf(index(t.key("command"), 0), "the program must not be empty")
		default:
			x.Command = cmd
		}
		t.duration("timeout", &x.Timeout, 0, true)
		out = append(out, x)
	}
	return out
}
