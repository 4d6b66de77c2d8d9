package birdlint

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testdataFS reads bird.conf paths from testdata, "/" being testdata.
func testdataFS(t *testing.T) (ReadFile, Glob) {
	t.Helper()
	root, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return FileSystem(root)
}

func TestReadConf(t *testing.T) {
	read, glob := testdataFS(t)
	c, err := ReadConf("/conf/bird.conf", read, glob)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"/conf/bird.conf", "/conf/conf.d/10-vip.conf"}, c.Files); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	type boot struct {
		Disabled, Known bool
		Where           string
	}
	got := map[string]boot{}
	for _, name := range []string{"wg_vip4", "wg_vip6", "wg_off", "wg-quoted", "wg_defined", "wg_override", "bgp_router", "device1", "wg_old"} {
		d, known, p := c.BootDisabled(name)
		where := ""
		if p.File != "" {
			where = filepath.Base(p.File) + ":" + strconv.Itoa(p.Line)
		}
		got[name] = boot{d, known, where}
	}
	// As BIRD 2.0.12 started this config: wg_vip4, wg-quoted and
	// wg_defined down; wg_vip6, wg_off and wg_override up.
	want := map[string]boot{
		"wg_vip4":     {true, true, "10-vip.conf:1"},
		"wg_vip6":     {false, true, "10-vip.conf:4"},
		"wg_off":      {false, true, "10-vip.conf:8"},
		"wg-quoted":   {true, true, "10-vip.conf:11"},
		"wg_defined":  {true, true, "10-vip.conf:12"},
		"wg_override": {false, true, "10-vip.conf:13"},
		"bgp_router":  {false, true, "bird.conf:19"},
		"device1":     {false, false, ""}, // anonymous: BIRD names it
		"wg_old":      {false, false, ""}, // commented out
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("boot state (-want +got):\n%s", diff)
	}
}

func TestReadConfCaptured(t *testing.T) {
	read, glob := testdataFS(t)
	for file, want := range map[string]map[string]bool{
		"/bird_a.conf": {"wg_vip4": true, "other_static": false, "up_peer": false},
		"/bird_c.conf": {"wg_vip4": false, "wg_vip6": false},
	} {
		c, err := ReadConf(file, read, glob)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for name := range want {
			d, known, _ := c.BootDisabled(name)
			if !known {
				t.Errorf("%s: %s not found", file, name)
			}
			got[name] = d
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", file, diff)
		}
	}
}

func TestReadConfErrors(t *testing.T) {
	files := map[string]string{
		"/loop.conf":     `include "loop.conf";`,
		"/fanout.conf":   `include "fanout.conf"; include "fanout.conf"; include "fanout.conf"; include "fanout.conf";`,
		"/comment.conf":  "protocol static x { /* never closed",
		"/string.conf":   `protocol static x { description "never closed; }`,
		"/missing.conf":  `include "/nowhere/*.conf"; protocol static x { disabled; }`,
		"/unknown.conf":  `protocol static x { disabled SOMETHING; }`,
		"/template.conf": `protocol static x from nosuch { }`,
		"/tloop.conf":    `template static a from b { } template static b from a { } protocol static x from a { }`,
	}
	read := func(p string) ([]byte, error) {
		s, ok := files[p]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		}
		return []byte(s), nil
	}
	glob := func(p string) ([]string, error) {
		if _, ok := files[p]; ok {
			return []string{p}, nil
		}
		return nil, nil
	}
	for _, f := range []string{"/loop.conf", "/fanout.conf", "/comment.conf", "/string.conf", "/nosuch.conf"} {
		if _, err := ReadConf(f, read, glob); err == nil {
			t.Errorf("%s: no error", f)
		}
	}
	// An include matching nothing is fine (BIRD agrees); a value it cannot
	// evaluate and a missing or looping template leave the state unknown.
	for f, wantKnown := range map[string]bool{"/missing.conf": true, "/unknown.conf": false, "/template.conf": false, "/tloop.conf": false} {
		c, err := ReadConf(f, read, glob)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, known, _ := c.BootDisabled("x"); known != wantKnown {
			t.Errorf("%s: known = %v, want %v", f, known, wantKnown)
		}
	}
}

func TestFileSystemNamesPathsAsBIRDDoes(t *testing.T) {
	read, _ := testdataFS(t)
	_, err := read("/etc/bird/nosuch.conf")
	if err == nil || !strings.Contains(err.Error(), "open /etc/bird/nosuch.conf:") || strings.Contains(err.Error(), "testdata") {
		t.Errorf("err = %v, want it to name /etc/bird/nosuch.conf only", err)
	}
	if _, err := os.Stat("testdata/conf/conf.d/10-vip.conf"); err != nil {
		t.Fatal(err)
	}
}

func TestConfigArg(t *testing.T) {
	tests := []struct {
		args []string
		want string
		ok   bool
	}{
		{[]string{"bird"}, "", false},
		{[]string{"/usr/sbin/bird", "-f", "-u", "bird", "-g", "bird"}, "", false},
		{[]string{"bird", "-c", "a.conf", "-s", "/tmp/a.ctl"}, "a.conf", true},
		{[]string{"bird", "-ca.conf"}, "a.conf", true},
		{[]string{"bird", "-fc", "/etc/bird/x.conf"}, "/etc/bird/x.conf", true},
		{[]string{"bird", "-s", "-c", "-c", "real.conf"}, "real.conf", true}, // -s takes "-c" as its socket
		{[]string{"bird", "-l"}, "bird.conf", true},
		{[]string{"bird", "-l", "-c", "x.conf"}, "x.conf", true},
	}
	for _, tt := range tests {
		got, ok := ConfigArg(tt.args)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ConfigArg(%q) = %q, %v; want %q, %v", tt.args, got, ok, tt.want, tt.ok)
		}
	}
}

func TestListeningInodes(t *testing.T) {
	// /proc/net/unix with BIRD's control socket listening, a connection to
	// it, a stale entry of the same path that is not listening, and a
	// socket without a path.
	table := `Num       RefCount Protocol Flags    Type St Inode Path
0000000046876a6b: 00000003 00000000 00000000 0001 03  1057
00000000aa11bb22: 00000002 00000000 00010000 0001 01 73412 /run/bird/bird.ctl
00000000aa11bb23: 00000003 00000000 00000000 0001 03 73500 /run/bird/bird.ctl
00000000aa11bb24: 00000002 00000000 00010000 0001 01 73413 /run/bird/bird.ctl.old
00000000aa11bb25: 00000002 00000000 00010000 0001 01 80001 /tmp/a dir/bird.ctl
`
	for path, want := range map[string][]string{
		"/run/bird/bird.ctl":  {"73412"},
		"/tmp/a dir/bird.ctl": {"80001"},
		"/run/bird/nosuch":    nil,
	} {
		if diff := cmp.Diff(want, ListeningInodes([]byte(table), path)); diff != "" {
			t.Errorf("ListeningInodes(%q) (-want +got):\n%s", path, diff)
		}
	}
}
