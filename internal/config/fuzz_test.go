package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that every refusal is an *Error
// pointing inside the file, and that every accepted config keeps the
// invariants the daemon relies on.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte(full))
	f.Add([]byte(""))
	f.Add([]byte("service = [{ interface = \"wg0\", vips = [\"fd00::1/64\"], protocols = [\"p\"] }]\n"))
	f.Add([]byte(minimal + "[[service.exec]]\ncommand = [\"/bin/true\"]\n[[service]]\n"))
	f.Add([]byte(minimal + "[service.probe]\nprivate_key_file = \"/k\"\nendpoint = \"[::1]:1\"\n"))
	f.Add([]byte("[hook]\ncommand = []\n" + minimal))
	f.Add([]byte("[bird]\nsocket = \n"))
	f.Add([]byte("a.\"b c\".d = [[1, {x = 2}], []]\n[[a.e]]\n[a.e.f]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.toml", data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			if e.File != "fuzz.toml" || e.Line < 0 || e.Line > strings.Count(string(data), "\n")+1 || e.Msg == "" {
				t.Fatalf("bad error %#v", e)
			}
			if !strings.HasPrefix(e.Error(), "fuzz.toml") {
				t.Fatalf("Error() = %q, want the file name first", e.Error())
			}
			if cfg != nil {
				t.Fatalf("config returned with error %v", err)
			}
			return
		}
		if cfg == nil || len(cfg.Services) == 0 {
			t.Fatalf("accepted a config without services: %+v", cfg)
		}
		for _, s := range cfg.Services {
			if !validName(s.Name) || checkInterface(s.Interface) != "" || len(s.VIPs) == 0 || len(s.Protocols) == 0 {
				t.Fatalf("accepted a bad service: %+v", s)
			}
			for _, p := range s.Protocols {
				if !validSymbol(p) {
					t.Fatalf("accepted protocol %q", p)
				}
			}
			if s.Interval < MinInterval || s.Timeout <= 0 || s.Timeout >= s.Interval ||
				s.FastInterval <= 0 || s.FastInterval > s.Interval || s.Rise < 1 || s.Fall < 1 {
				t.Fatalf("accepted bad timing: %+v", s)
			}
			for _, x := range s.Exec {
				if len(x.Command) == 0 || x.Command[0] == "" || x.Timeout <= 0 {
					t.Fatalf("accepted a bad exec: %+v", x)
				}
			}
			if p := s.Probe; p != nil && (!strings.HasPrefix(p.PrivateKeyFile, "/") || p.Timeout <= 0 || p.Timeout >= s.Interval ||
				p.ServerPublicKey != "" && checkPublicKey(p.ServerPublicKey) != "" || p.Endpoint != "" && checkEndpoint(p.Endpoint) != "") {
				t.Fatalf("accepted a bad probe: %+v", *p)
			}
		}
		if h := cfg.Hook; h.Timeout <= 0 || len(h.Command) > 0 && h.Command[0] == "" {
			t.Fatalf("accepted a bad hook: %+v", h)
		}
	})
}
