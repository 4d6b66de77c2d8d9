package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// ErrUnknownGroup: control.group names no group of this system, a
// configuration error.
var ErrUnknownGroup = errors.New("no such group")

// SocketMode is the control socket's mode: root and the configured group
// may connect, nobody else.
const SocketMode = 0o660

// listen creates the control socket at path: its directory if missing, a
// stale socket (nothing answers) replaced, mode 0660 and group group ("":
// the process's). See bindPrivate for how it is never reachable with
// other permissions.
func listen(path, group string) (*net.UnixListener, fs.FileInfo, error) {
	if path == "" {
		return nil, nil, errors.New("no control socket path")
	}
	if len(path) > maxSocketPath {
		return nil, nil, fmt.Errorf("control socket path %s is %d bytes long, at most %d", path, len(path), maxSocketPath)
	}
	gid := -1
	if group != "" {
		g, err := lookupGroup(group)
		if err != nil {
			return nil, nil, err
		}
		gid = g
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("creating control socket directory: %w", err)
	}
	if err := clearStale(path); err != nil {
		return nil, nil, err
	}
	ln, err := bindPrivate(path)
	if err != nil {
		return nil, nil, err
	}
	// The socket is renamed and removed by Close only while it is still
	// ours; the listener must not unlink by the old name.
	ln.SetUnlinkOnClose(false)
	tmp := ln.Addr().String()
	fail := func(err error) (*net.UnixListener, fs.FileInfo, error) {
		ln.Close()
		if tmp != path {
			os.RemoveAll(filepath.Dir(tmp))
		} else {
			os.Remove(path)
		}
		return nil, nil, err
	}
	if err := os.Chmod(tmp, SocketMode); err != nil {
		return fail(fmt.Errorf("setting mode of control socket: %w", err))
	}
	if gid >= 0 {
		if err := os.Chown(tmp, -1, gid); err != nil {
			hint := ""
			if errors.Is(err, syscall.EPERM) {
				hint = " (wgbird needs CAP_CHOWN or membership of the group)"
			}
			return fail(fmt.Errorf("setting group of control socket %s to %q: %w%s", path, group, err, hint))
		}
	}
	if tmp != path {
		if err := os.Rename(tmp, path); err != nil {
			return fail(fmt.Errorf("creating control socket %s: %w", path, err))
		}
		os.Remove(filepath.Dir(tmp))
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(fmt.Errorf("creating control socket %s: %w", path, err))
	}
	return ln, fi, nil
}

// maxSocketPath is the longest path a unix socket can be bound to
// (sun_path holds 108 bytes with the terminating NUL).
const maxSocketPath = 107

// bindPrivate binds a unix socket for path. It binds in a fresh 0700
// directory beside path, for the caller to chmod, chown and rename into
// place, so that nobody can connect before the permissions are right.
// When that temporary path would be too long for a socket, it binds path
// itself: the socket then has the umask's permissions until the chmod.
func bindPrivate(path string) (*net.UnixListener, error) {
	dir := filepath.Dir(path)
	bind := path
	var tmpDir string
	if len(dir)+len("/.w1234567890/s") <= maxSocketPath {
		d, err := os.MkdirTemp(dir, ".w")
		if err != nil {
			return nil, fmt.Errorf("creating control socket: %w", err)
		}
		tmpDir, bind = d, filepath.Join(d, "s")
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: bind, Net: "unix"})
	if err != nil {
		if tmpDir != "" {
			os.RemoveAll(tmpDir)
		}
		return nil, fmt.Errorf("creating control socket %s: %w", path, err)
	}
	return ln, nil
}

// clearStale removes a socket at path that nothing answers on, and refuses
// when something does or when path is not a socket.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking control socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control socket %s exists and is not a socket; refusing to replace it", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("another wgbird is running on %s", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("checking control socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing stale control socket: %w", err)
	}
	return nil
}

// GroupExists reports whether control.group names a group of this system
// ("" does: root's group is kept): false with ErrUnknownGroup when it does
// not, so that wgbird run can say so as a configuration error before it
// listens anywhere.
func GroupExists(name string) (bool, error) {
	if name == "" {
		return true, nil
	}
	_, err := lookupGroup(name)
	if errors.Is(err, ErrUnknownGroup) {
		return false, err
	}
	return err == nil, err
}

// lookupGroup returns the gid of a group name (or a numeric gid).
func lookupGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr == nil {
			g, err = user.LookupGroupId(name)
		}
	}
	var unknown user.UnknownGroupError
	var unknownID user.UnknownGroupIdError
	if errors.As(err, &unknown) || errors.As(err, &unknownID) {
		return 0, fmt.Errorf("control.group %q: %w", name, ErrUnknownGroup)
	}
	if err != nil {
		return 0, fmt.Errorf("control.group %q: %w", name, err)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return 0, fmt.Errorf("control.group %q: gid %q: %w", name, g.Gid, err)
	}
	return gid, nil
}

// Running returns an error naming the socket when another wgbird answers on
// it, so that a second instance stops before it takes anything else (a
// metrics port, BIRD) and says why; Start checks again when it binds.
func Running(path string) error {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return nil
	}
	c.Close()
	return fmt.Errorf("another wgbird is running on %s", path)
}
