package birdlint

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wgbird/wgbird/internal/bird"
)

// FuzzReadConf: any text, however broken, gives an error or a Conf, never
// a panic or a hang, and BootDisabled terminates on what it returns.
func FuzzReadConf(f *testing.F) {
	for _, name := range []string{"bird_a.conf", "bird_c.conf", "conf/bird.conf", "conf/conf.d/10-vip.conf"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add(`template static a from a { } protocol static x from a { disabled`)
	f.Add(`protocol static x { disabled "yes"; } protocol`)
	f.Fuzz(func(t *testing.T, s string) {
		read := func(string) ([]byte, error) { return []byte(s), nil }
		glob := func(p string) ([]string, error) { return nil, nil }
		c, err := ReadConf("/bird.conf", read, glob)
		if err != nil {
			return
		}
		for name := range c.Protocols {
			c.BootDisabled(name)
		}
	})
}

// FuzzParseProtocolsAll: any reply parses or fails, never panics.
func FuzzParseProtocolsAll(f *testing.F) {
	for _, name := range []string{"protocols_all_up.txt", "protocols_all_disabled.txt", "protocols_all_tables.txt", "export_count_one.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := bird.ParseReply([]byte(s))
		if err != nil {
			return
		}
		ParseProtocolsAll(r)
		ParseRouteCount(r)
	})
}
