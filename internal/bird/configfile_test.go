package bird

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestConfigArg(t *testing.T) {
	help212, err := os.ReadFile("testdata/help-2.0.12.txt")
	if err != nil {
		t.Fatal(err)
	}
	help332, err := os.ReadFile("testdata/help-3.3.2.txt")
	if err != nil {
		t.Fatal(err)
	}
	noHelp := func() (string, error) { return "", errors.New("not asked") }
	for _, tc := range []struct {
		name string
		args []string
		help func() (string, error)
		want string
	}{
		{"-c and value", []string{"bird", "-f", "-c", "/run/x/bird.conf", "-s", "/run/x/bird.ctl"}, noHelp, "/run/x/bird.conf"},
		{"-c joined", []string{"bird", "-c/etc/b.conf"}, noHelp, "/etc/b.conf"},
		{"-c clustered after flags", []string{"bird", "-fdc", "b.conf"}, noHelp, "b.conf"},
		{"-s value that looks like -c", []string{"bird", "-s", "-c", "-c", "real.conf"}, noHelp, "real.conf"},
		{"last -c wins", []string{"bird", "-c", "a", "-c", "b"}, noHelp, "b"},
		{"-l", []string{"bird", "-l", "-s", "x"}, noHelp, "bird.conf"},
		{"-c wins over -l", []string{"bird", "-c", "/a.conf", "-l"}, noHelp, "/a.conf"},
		{"default of Debian's 2.0.12", []string{"/usr/sbin/bird", "-f", "-u", "bird", "-g", "bird"}, func() (string, error) { return string(help212), nil }, "/etc/bird/bird.conf"},
		{"default of a 3.3.2 in /opt", []string{"bird"}, func() (string, error) { return string(help332), nil }, "/opt/bird-3.3.2/etc/bird.conf"},
	} {
		got, err := configArg(tc.args, tc.help)
		if err != nil || got != tc.want {
			t.Errorf("%s: configArg(%q) = %q, %v; want %q", tc.name, tc.args, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		name string
		args []string
		help func() (string, error)
	}{
		{"-c without value", []string{"bird", "-c"}, noHelp},
		{"help fails", []string{"bird"}, noHelp},
		{"help without a default", []string{"bird"}, func() (string, error) { return "bird: unknown option\n", nil }},
	} {
		if got, err := configArg(tc.args, tc.help); err == nil {
			t.Errorf("%s: configArg(%q) = %q, want an error", tc.name, tc.args, got)
		}
	}
}

// TestConfigFile finds this test process behind a socket it listens on,
// and so the -test.* arguments and a missing -c: the "default" is then
// whatever the test binary's --help says, which names none.
func TestConfigFile(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "bird.ctl")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pid, err := socketPeer(context.Background(), sock)
	if err != nil || pid != os.Getpid() {
		t.Errorf("socketPeer = %d, %v; want %d (this process)", pid, err, os.Getpid())
	}
	if _, _, err := ConfigFile(context.Background(), filepath.Join(t.TempDir(), "missing.ctl")); err == nil {
		t.Error("ConfigFile of a missing socket: no error")
	}
}

// A configuration file reached through a symbolic link is watched where
// it is, since inotify reports an open in the file's own directory.
func TestWatchable(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "conf", "bird.conf")
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(real, []byte("router id 1.1.1.1;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "bird.conf")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	want, err := filepath.EvalSymlinks(real) // TempDir may itself be under a link
	if err != nil {
		t.Fatal(err)
	}
	if got, err := watchable(link, "/proc/1", true); err != nil || got != want {
		t.Errorf("watchable(link) = %q, %v; want %q", got, err, want)
	}
	if got, err := watchable(filepath.Join(dir, "missing.conf"), "/proc/1", true); err == nil {
		t.Errorf("watchable(missing) = %q, want an error", got)
	}
}
