package config

import (
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"strings"
	"time"
)

// maxUnixSocketPath is the longest path a unix socket can bind to on Linux
// (sun_path holds 108 bytes including the terminating NUL).
const maxUnixSocketPath = 107

// config validates f and fills in the defaults of what it leaves out.
func (v *validator) config(f *document) *Config {
	cfg := Default()
	v.filePath("bird.socket", f.BIRD.Socket, &cfg.BIRD.Socket, true)
	v.duration("bird.timeout", f.BIRD.Timeout, &cfg.BIRD.Timeout, 0, true)

	c := &cfg.Control
	v.filePath("control.socket", f.Control.Socket, &c.Socket, true)
	if v.has("control.group") {
		c.Group = f.Control.Group
		if msg := checkGroup(c.Group); c.Group != "" && msg != "" {
			v.errorf("control.group", "%s", msg)
		}
	}
	v.filePath("control.state_dir", f.Control.StateDir, &c.StateDir, false)
	v.filePath("control.runtime_dir", f.Control.RuntimeDir, &c.RuntimeDir, false)
	if c.StateDir == c.RuntimeDir {
		v.differ("control.runtime_dir", "control.state_dir", c.StateDir, ": one keeps drains across reboots, the other does not")
	}
	if c.Socket == cfg.BIRD.Socket {
		v.differ("control.socket", "bird.socket", cfg.BIRD.Socket, "")
	}

	v.duration("shutdown.delay", f.Shutdown.Delay, &cfg.Shutdown.Delay, 0, false)
	v.choice("shutdown.on_system_shutdown", f.Shutdown.OnSystemShutdown, &cfg.Shutdown.OnSystemShutdown)
	v.choice("shutdown.on_stop", f.Shutdown.OnStop, &cfg.Shutdown.OnStop)

	if msg := checkListen(f.Metrics.Listen); msg != "" {
		v.errorf("metrics.listen", "%s", msg)
	} else {
		cfg.Metrics.Listen = f.Metrics.Listen
	}

	// An absent or empty hook command turns the hook off.
	if cmd := f.Hook.Command; len(cmd) > 0 && cmd[0] == "" {
		v.errorf("hook.command[1]", "the program must not be empty")
	} else if len(cmd) > 0 {
		cfg.Hook.Command = cmd
	}
	v.duration("hook.timeout", f.Hook.Timeout, &cfg.Hook.Timeout, 0, true)

	cfg.Services = v.services(f.Service)
	return &cfg
}

// differ reports two keys that must not have the same value, at the first
// of them that is written in the document.
func (v *validator) differ(a, b, value, why string) {
	if !v.has(a) && v.has(b) {
		a, b = b, a
	}
	v.errorf(a, "must differ from %s (%s)%s", b, value, why)
}

// duration sets *dst to d if key is set and d is at least min; negative
// durations are always refused, positive demands > 0.
func (v *validator) duration(key string, d duration, dst *time.Duration, min time.Duration, positive bool) (present, ok bool) {
	if !v.has(key) {
		return false, true
	}
	switch {
	case d.d < 0:
		v.errorf(key, "must not be negative, got %s", d.d)
	case positive && d.d == 0:
		v.errorf(key, "must be positive, got %s", d.d)
	case d.d < min:
		v.errorf(key, "must be at least %s, got %s", min, d.d)
	default:
		*dst = d.d
		return true, true
	}
	return true, false
}

// integer sets *dst to i if key is set and i is within [lo, hi].
func (v *validator) integer(key string, i int, dst *int, lo, hi int64) {
	switch {
	case !v.has(key):
	case int64(i) < lo:
		v.errorf(key, "must be at least %d, got %d", lo, i)
	case int64(i) > hi:
		v.errorf(key, "must be at most %d, got %d", hi, i)
	default:
		*dst = i
	}
}

// filePath sets *dst to an absolute path s if key is set; socket paths
// must also fit in a unix socket address.
func (v *validator) filePath(key, s string, dst *string, socket bool) {
	switch {
	case !v.has(key):
	case !filepath.IsAbs(s):
		v.errorf(key, "must be an absolute path, got %q", s)
	case strings.IndexByte(s, 0) >= 0:
		v.errorf(key, "must not contain a NUL byte")
	case socket && len(s) > maxUnixSocketPath:
		v.errorf(key, "is too long for a unix socket: %d bytes, at most %d", len(s), maxUnixSocketPath)
	default:
		*dst = s
	}
}

func (v *validator) choice(key, s string, dst *string) {
	switch {
	case !v.has(key):
	case s != Withdraw && s != Keep:
		v.errorf(key, "must be %q or %q, got %q", Withdraw, Keep, s)
	default:
		*dst = s
	}
}

// services validates the [[service]] array and what must be unique
// across services.
func (v *validator) services(fs []fileService) []Service {
	if len(fs) == 0 {
		v.errorf("service", "at least one [[service]] is required")
		return nil
	}
	out := make([]Service, 0, len(fs))
	names := map[string]string{}     // service name → where it was set
	protocols := map[string]string{} // protocol → key
	for i := range fs {
		path := index("service", i)
		s, nameKey := v.service(path, &fs[i])
		out = append(out, s)
		if s.Name != "" {
			if where, dup := names[s.Name]; !dup {
				names[s.Name] = nameKey
			} else if nameKey == path {
				v.errorf(join(path, "interface"), "duplicate service name %q (the name defaults to the interface), also at %s; set a unique name", s.Name, where)
			} else {
				v.errorf(nameKey, "duplicate service name %q, also at %s", s.Name, where)
			}
		}
		for j, p := range s.Protocols {
			key := index(join(path, "protocols"), j)
			if !validSymbol(p) {
				continue // already reported
			}
			if where, dup := protocols[p]; dup {
				v.errorf(key, "duplicate protocol %q, also at %s", p, where)
				continue
			}
			protocols[p] = key
		}
	}
	return out
}

// service validates one [[service]]. nameKey is where its name was set:
// the name key, or the service itself when the name defaults to the
// interface.
func (v *validator) service(path string, f *fileService) (s Service, nameKey string) {
	s = Service{
		Interval:    DefaultInterval,
		Rise:        DefaultRise,
		Fall:        DefaultFall,
		MinPeers:    DefaultMinPeers,
		QuietPeriod: DefaultQuietPeriod,
		VIPSource:   true,
		Takeover:    true,
		GroupPort:   DefaultGroupPort,
	}
	key := func(k string) string { return join(path, k) }
	required := func(k string) bool {
		if !v.has(key(k)) {
			v.errorf(path, "missing required key %q", k)
			return false
		}
		return true
	}

	if required("interface") {
		if msg := checkInterface(f.Interface); msg != "" {
			v.errorf(key("interface"), "%s", msg)
		} else {
			s.Interface = f.Interface
		}
	}
	nameKey = path
	switch {
	case v.has(key("name")):
		nameKey = key("name")
		if validName(f.Name) {
			s.Name = f.Name
		} else {
			v.errorf(nameKey, "invalid name %q: want 1 to 64 characters of A-Z a-z 0-9 _ . -", f.Name)
		}
	case s.Interface == "":
	case validName(s.Interface):
		s.Name = s.Interface
	default:
		v.errorf(key("interface"), "%q cannot be the service name (want 1 to 64 characters of A-Z a-z 0-9 _ . -); set name", s.Interface)
	}
	if required("vips") {
		s.VIPs = v.vips(key("vips"), f.VIPs)
	}
	if required("protocols") {
		s.Protocols = v.protocols(key("protocols"), f.Protocols)
	}

	_, intervalOK := v.duration(key("interval"), f.Interval, &s.Interval, MinInterval, true)
	// The defaults shrink with a short interval; explicit values must fit.
	s.FastInterval = min(DefaultFastInterval, s.Interval)
	s.LivenessInterval = min(DefaultLivenessInterval, s.Interval)
	s.Timeout = min(DefaultTimeout, s.Interval/2)
	if present, ok := v.duration(key("fast_interval"), f.FastInterval, &s.FastInterval, 0, true); present && ok && intervalOK && s.FastInterval > s.Interval {
		v.errorf(key("fast_interval"), "must not exceed interval (%s), got %s", s.Interval, s.FastInterval)
	}
	if present, ok := v.duration(key("liveness_interval"), f.LivenessInterval, &s.LivenessInterval, 0, true); present && ok && intervalOK && s.LivenessInterval > s.Interval {
		v.errorf(key("liveness_interval"), "must not exceed interval (%s), got %s", s.Interval, s.LivenessInterval)
	}
	if present, ok := v.duration(key("timeout"), f.Timeout, &s.Timeout, 0, true); present && ok && intervalOK && s.Timeout >= s.Interval {
		v.errorf(key("timeout"), "must be less than interval (%s), got %s", s.Interval, s.Timeout)
	}
	v.integer(key("rise"), f.Rise, &s.Rise, 1, 100)
	v.integer(key("fall"), f.Fall, &s.Fall, 1, 100)
	v.integer(key("listen_port"), f.ListenPort, &s.ListenPort, 0, 65535)
	v.integer(key("min_peers"), f.MinPeers, &s.MinPeers, 0, math.MaxInt32)
	v.duration(key("max_handshake_age"), f.MaxHandshakeAge, &s.MaxHandshakeAge, 0, false)
	v.duration(key("quiet_period"), f.QuietPeriod, &s.QuietPeriod, 0, true)

	v.continuity(path, f, &s)

	if v.has(key("exec")) {
		s.Exec = v.execs(key("exec"), f.Exec)
	}
	if v.has(key("probe")) && f.Probe != nil {
		s.Probe = v.probe(key("probe"), f.Probe, s.Interval, intervalOK)
	}
	return s, nameKey
}

// continuity validates a service's client continuity keys.
func (v *validator) continuity(path string, f *fileService, s *Service) {
	key := func(k string) string { return join(path, k) }
	if v.has(key("vip_source")) {
		s.VIPSource = f.VIPSource
	}
	if v.has(key("takeover")) {
		s.Takeover = f.Takeover
	}
	v.integer(key("vip_source_table"), f.VIPSourceTable, &s.VIPSourceTable, 1, math.MaxInt32)
	if t := s.VIPSourceTable; t >= 253 && t <= 255 {
		v.errorf(key("vip_source_table"), "must not be the kernel's default, main or local table (253-255), got %d", t)
		s.VIPSourceTable = 0
	}
	if v.has(key("group")) {
		seen := map[netip.Addr]bool{}
		for i, a := range f.Group {
			ip, err := netip.ParseAddr(a)
			switch {
			case err != nil || ip.Zone() != "":
				v.errorf(key("group"), "member %d: %q is not an IP address (want such as \"10.0.5.1\")", i+1, a)
			case seen[ip.Unmap()]:
				v.errorf(key("group"), "member %s listed twice", ip.Unmap())
			default:
				seen[ip.Unmap()] = true
				s.Group = append(s.Group, ip.Unmap())
			}
		}
	}
	v.integer(key("group_port"), f.GroupPort, &s.GroupPort, 1, 65535)
	if s.ListenPort != 0 && s.GroupPort == s.ListenPort {
		v.differ(key("group_port"), key("listen_port"), fmt.Sprint(s.ListenPort), ": the group needs a port of its own")
	}
	v.filePath(key("group_secret_file"), f.GroupSecretFile, &s.GroupSecretFile, false)
}

// probe validates [service.probe]. Whether the key files exist and are
// private is checked when the daemon starts, not here.
func (v *validator) probe(path string, f *fileProbe, interval time.Duration, intervalOK bool) *Probe {
	p := &Probe{Timeout: min(DefaultProbeTimeout, interval/2)}
	key := func(k string) string { return join(path, k) }
	if !v.has(key("private_key_file")) {
		v.errorf(path, "missing required key %q", "private_key_file")
	}
	v.filePath(key("private_key_file"), f.PrivateKeyFile, &p.PrivateKeyFile, false)
	v.filePath(key("preshared_key_file"), f.PresharedKeyFile, &p.PresharedKeyFile, false)
	if !v.has(key("server_public_key")) {
	} else if msg := checkPublicKey(f.ServerPublicKey); msg != "" {
		v.errorf(key("server_public_key"), "%s", msg)
	} else {
		p.ServerPublicKey = f.ServerPublicKey
	}
	if !v.has(key("endpoint")) {
	} else if msg := checkEndpoint(f.Endpoint); msg != "" {
		v.errorf(key("endpoint"), "%s", msg)
	} else {
		p.Endpoint = f.Endpoint
	}
	if present, ok := v.duration(key("timeout"), f.Timeout, &p.Timeout, 0, true); present && ok && intervalOK && p.Timeout >= interval {
		v.errorf(key("timeout"), "must be less than interval (%s), got %s", interval, p.Timeout)
	}
	return p
}

func (v *validator) vips(key string, list []string) []netip.Prefix {
	if len(list) == 0 {
		v.errorf(key, `must list at least one VIP, such as "192.168.20.1/24"`)
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
				v.errorf(k, "invalid VIP %q: missing prefix length, such as %q", s, example)
			} else {
				v.errorf(k, "invalid VIP %q: want an address with a prefix length, such as \"192.168.20.1/24\"", s)
			}
			continue
		case err != nil:
			v.errorf(k, "invalid VIP %q: %s", s, prefixReason(err))
			continue
		}
		if where, dup := seen[p.Addr()]; dup {
			v.errorf(k, "duplicate VIP address %s, also at %s", p.Addr(), where)
			continue
		}
		seen[p.Addr()] = k
		out = append(out, p)
	}
	return out
}

func (v *validator) protocols(key string, list []string) []string {
	if len(list) == 0 {
		v.errorf(key, `must list at least one BIRD protocol, such as "wg_vip4"`)
		return nil
	}
	for i, s := range list {
		if !validSymbol(s) {
			v.errorf(index(key, i), "invalid BIRD protocol name %q: want a letter or '_' then letters, digits or '_', at most 64 characters", s)
		}
	}
	// Duplicates, within the service and across services, are found by
	// the caller.
	return list
}

func (v *validator) execs(key string, fs []fileExec) []Exec {
	out := make([]Exec, 0, len(fs))
	names := map[string]string{} // exec name → where it was set
	for i, f := range fs {
		path := index(key, i)
		x := Exec{Name: fmt.Sprintf("exec%d", i+1), Timeout: DefaultExecTimeout}
		nameKey := path
		if v.has(join(path, "name")) {
			nameKey = join(path, "name")
			x.Name = f.Name
			if !validName(x.Name) {
				v.errorf(nameKey, "invalid name %q: want 1 to 64 characters of A-Z a-z 0-9 _ . -", x.Name)
			}
		}
		if where, dup := names[x.Name]; !dup {
			names[x.Name] = nameKey
		} else if nameKey == path {
			v.errorf(path, "duplicate exec name %q (the default for this position), also at %s; set a unique name", x.Name, where)
		} else {
			v.errorf(nameKey, "duplicate exec name %q, also at %s", x.Name, where)
		}
		cmdKey := join(path, "command")
		switch cmd := f.Command; {
		case !v.has(cmdKey):
			v.errorf(path, "missing required key %q", "command")
		case len(cmd) == 0:
			v.errorf(cmdKey, `must not be empty: want the program and its arguments, such as ["/usr/local/bin/check", "wg0"]`)
		case cmd[0] == "":
			v.errorf(index(cmdKey, 0), "the program must not be empty")
		default:
			x.Command = cmd
		}
		v.duration(join(path, "timeout"), f.Timeout, &x.Timeout, 0, true)
		out = append(out, x)
	}
	return out
}
