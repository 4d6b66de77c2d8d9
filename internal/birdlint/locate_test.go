package birdlint

import (
	"os"
	"path/filepath"
	"testing"
)

// A config reached through a symbolic link is watched where it is, since
// inotify reports an open in the file's own directory (BIRD in this
// process's mount namespace: /proc/self).
func TestWatchedFollowsLinks(t *testing.T) {
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
	want, err := filepath.EvalSymlinks(real) // TempDir may be under a link itself
	if err != nil {
		t.Fatal(err)
	}
	self := Located{PID: os.Getpid(), Root: "/proc/self/root"}
	self.Path = link
	if got, err := self.Watched(); err != nil || got != want {
		t.Errorf("Watched(link) = %q, %v; want %q", got, err, want)
	}
	self.Path = filepath.Join(dir, "missing.conf")
	if got, err := self.Watched(); err == nil {
		t.Errorf("Watched(missing) = %q, want an error", got)
	}
}

// A BIRD whose /proc/PID/root cannot be looked into (another mount
// namespace, no ptrace access) has its config watched at its own path
// when that exists here.
func TestWatchedWithoutProcAccess(t *testing.T) {
	real := filepath.Join(t.TempDir(), "bird.conf")
	if err := os.WriteFile(real, []byte("router id 1.1.1.1;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := filepath.EvalSymlinks(real)
	if err != nil {
		t.Fatal(err)
	}
	// A pid that is not running: neither its ns/mnt nor its root exist.
	gone := Located{PID: 1 << 30, Root: "/proc/1073741824/root", Path: real}
	if got, err := gone.Watched(); err != nil || got != want {
		t.Errorf("Watched = %q, %v; want %q", got, err, want)
	}
	gone.Path = filepath.Join(filepath.Dir(real), "missing.conf")
	if got, err := gone.Watched(); err == nil {
		t.Errorf("Watched(missing) = %q, want an error", got)
	}
}
