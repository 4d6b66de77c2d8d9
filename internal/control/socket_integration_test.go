//go:build integration

package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wgbird/wgbird/internal/daemon"
	"github.com/wgbird/wgbird/internal/drain"
	"github.com/wgbird/wgbird/internal/fakes"
)

// dialEnv switches the test binary into a helper that connects to the
// socket named by it and prints the outcome; the test re-executes itself
// as another user to try the socket's permissions.
const dialEnv = "WGBIRD_CONTROL_TEST_DIAL"

// nobody is the unprivileged user (and group) the helper runs as.
const nobody = 65534

func TestDialHelper(t *testing.T) {
	sock := os.Getenv(dialEnv)
	if sock == "" {
		t.Skip("helper of TestSocketPermissions")
	}
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	var errno syscall.Errno
	switch {
	case err == nil:
		c.Close()
		fmt.Println("DIAL: ok")
	case errors.As(err, &errno):
		fmt.Printf("DIAL: errno %d (%v)\n", int(errno), errno)
	default:
		fmt.Printf("DIAL: %v\n", err)
	}
}

// need fails the test under CI=true and skips it elsewhere.
func need(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("prerequisite missing: "+format, args...)
	}
	t.Skipf("prerequisite missing: "+format, args...)
}

// dialAs connects to sock as uid/gid nobody (no supplementary groups)
// from a copy of the test binary, and returns what the helper printed.
func dialAs(t *testing.T, bin, sock string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-test.run=^TestDialHelper$", "-test.count=1")
	cmd.Env = []string{dialEnv + "=" + sock, "PATH=/usr/bin:/bin"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if s, ok := strings.CutPrefix(line, "DIAL: "); ok {
			return s
		}
	}
	t.Fatalf("helper as uid %d: %v\n%s", nobody, err, out)
	return ""
}

// TestSocketPermissions proves that the control socket keeps out a user
// who is neither root nor in control.group, lets root in, and lets the
// group in when control.group is set.
func TestSocketPermissions(t *testing.T) {
	if os.Geteuid() != 0 {
		need(t, "root (to run a process as uid %d)", nobody)
	}
	g, err := user.LookupGroupId(fmt.Sprint(nobody))
	if err != nil {
		need(t, "a group with gid %d: %v", nobody, err)
	}
	// Everything the helper touches must be reachable by nobody, so that
	// only the socket's own mode can refuse it: not t.TempDir (0700).
	base, err := os.MkdirTemp("", "wgbc-perm-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "control.test")
	if err := copyFile(t, bin); err != nil {
		t.Fatal(err)
	}

	newServer := func(sock, group string) *Server {
		t.Helper()
		d := mustDaemon(t, daemon.Deps{BIRD: newBIRD(), WireGuard: fakes.NewWireGuard(nil), Links: upLink(), Log: testLog(t)})
		store := drain.NewStore(filepath.Join(base, "drains"), filepath.Join(base, "drains"))
		srv, err := Start(Options{Socket: sock, Group: group, Log: testLog(t)}, d, store)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		return srv
	}

	// The harness works: nobody connects to a socket open to all in the
	// same directory.
	open := filepath.Join(base, "open.sock")
	ln, err := net.Listen("unix", open)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := os.Chmod(open, 0o666); err != nil {
		t.Fatal(err)
	}
	if got := dialAs(t, bin, open); got != "ok" {
		t.Fatalf("nobody cannot connect to a 0666 socket (%s): the test cannot tell anything", got)
	}

	t.Run("no group: nobody refused, root accepted", func(t *testing.T) {
		srv := newServer(filepath.Join(base, "root", "wgbird.sock"), "")
		want := fmt.Sprintf("errno %d (%v)", int(syscall.EACCES), syscall.EACCES)
		if got := dialAs(t, bin, srv.Socket()); got != want {
			t.Errorf("nobody connecting: %s, want %s", got, want)
		}
		if _, err := NewClient(srv.Socket(), 5*time.Second).Status(context.Background()); err != nil {
			t.Errorf("root: %v", err)
		}
	})

	t.Run("control.group admits its members", func(t *testing.T) {
		srv := newServer(filepath.Join(base, "group", "wgbird.sock"), g.Name)
		if got := dialAs(t, bin, srv.Socket()); got != "ok" {
			t.Errorf("nobody in group %s connecting: %s, want ok", g.Name, got)
		}
	})
}

func copyFile(t *testing.T, dst string) error {
	src, err := os.Executable()
	if err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
