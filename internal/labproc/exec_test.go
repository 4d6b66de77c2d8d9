package labproc

import (
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		in   string
		want State
	}{
		{"123 (wireguard-go) S 1 2 3", State{Alive: true, Comm: "wireguard-go"}},
		{"123 (wireguard-go) T 1 2 3", State{Alive: true, Stopped: true, Comm: "wireguard-go"}},
		{"123 (bird) Z 1 2 3", State{Comm: "bird"}},
		{"123 (a) b) R 1", State{Alive: true, Comm: "a) b"}},
		{"garbage", State{}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, parseStat(tt.in)); diff != "" {
			t.Errorf("parseStat(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestComm(t *testing.T) {
	if got, want := Comm("/tmp/x/wgbird-integration-test"), "wgbird-integrat"; got != want {
		t.Errorf("comm = %q, want %q", got, want)
	}
}

// TestCloseInheritedFDs: a descriptor this process got without
// close-on-exec (as from `flock LOCK wgbird-lab up`) is not passed on to
// the lab's daemons.
func TestCloseInheritedFDs(t *testing.T) {
	fd, err := syscall.Open(filepath.Join(t.TempDir(), "lock"), syscall.O_CREAT|syscall.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	flags := func() int {
		v, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
		if errno != 0 {
			t.Fatal(errno)
		}
		return int(v)
	}
	if flags()&syscall.FD_CLOEXEC != 0 {
		t.Fatal("opened close-on-exec already")
	}
	closeInheritedFDs()
	if flags()&syscall.FD_CLOEXEC == 0 {
		t.Error("still inherited by the next exec")
	}
}
