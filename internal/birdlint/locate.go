package birdlint

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultConfigs are where BIRD reads its config without -c: Debian and
// Ubuntu's bird2, then builds with sysconfdir /etc, then source builds.
var DefaultConfigs = []string{"/etc/bird/bird.conf", "/etc/bird.conf", "/usr/local/etc/bird.conf"}

// Located is BIRD's config file as the running BIRD sees it.
type Located struct {
	PID int
	// Root is the directory BIRD's "/" is, seen from here:
	// /proc/PID/root, so that a BIRD in a container is read right.
	Root string
	// Path is the config's path inside Root.
	Path string
}

// Locate finds the config file of the BIRD that serves socket: it asks
// the kernel which process is at the other end (SO_PEERCRED) and reads
// that process's command line (-c FILE, relative to its working
// directory) or else the first of DefaultConfigs that exists.
func Locate(socket string, timeout time.Duration) (Located, error) {
	pid, err := peerPID(socket, timeout)
	if err != nil {
		return Located{}, err
	}
	proc := fmt.Sprintf("/proc/%d", pid)
	cmdline, err := os.ReadFile(proc + "/cmdline")
	if errors.Is(err, fs.ErrNotExist) {
		// BIRD without -f binds its socket and then forks: the kernel
		// names the parent, which has exited. Ask who holds the socket.
		if owner, oerr := listenerPID(socket); oerr == nil {
			pid, proc = owner, fmt.Sprintf("/proc/%d", owner)
			cmdline, err = os.ReadFile(proc + "/cmdline")
		} else {
			err = fmt.Errorf("%w; looking for the process holding %s: %w", err, socket, oerr)
		}
	}
	if err != nil {
		return Located{}, fmt.Errorf("reading BIRD's command line: %w", err)
	}
	loc := Located{PID: pid, Root: proc + "/root"}
	if conf, ok := ConfigArg(strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")); ok {
		if !path.IsAbs(conf) {
			cwd, err := os.Readlink(proc + "/cwd")
			if err != nil {
				return Located{}, fmt.Errorf("reading BIRD's working directory for its config %q: %w", conf, err)
			}
			conf = path.Join(cwd, conf)
		}
		loc.Path = conf
		return loc, nil
	}
	for _, p := range DefaultConfigs {
		if _, err := os.Stat(filepath.Join(loc.Root, p)); err == nil {
			loc.Path = p
			return loc, nil
		}
	}
	return Located{}, fmt.Errorf("BIRD (pid %d) runs without -c and none of %s exists", pid, strings.Join(DefaultConfigs, ", "))
}

// ConfigArg returns the config file named by BIRD's command line args
// (argv[0] first), as BIRD's getopt reads it: "-c FILE", "-cFILE", within
// a group of flags ("-fc FILE"), or "bird.conf" in the working directory
// for -l without -c.
func ConfigArg(args []string) (string, bool) {
	conf, found, local := "", false, false
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if len(a) < 2 || a[0] != '-' || strings.HasPrefix(a, "--") {
			continue
		}
		for j := 1; j < len(a); j++ {
			if a[j] == 'l' {
				local = true
			}
			// Options of bird 2 that take an argument.
			if !strings.ContainsRune("cDgPsu", rune(a[j])) {
				continue
			}
			val := a[j+1:]
			if val == "" && i+1 < len(args) {
				i++
				val = args[i]
			}
			if a[j] == 'c' {
				conf, found = val, true
			}
			break
		}
	}
	if !found && local {
		return "bird.conf", true
	}
	return conf, found
}

// peerPID connects to BIRD's socket and asks the kernel for the PID of
// the process that accepted.
func peerPID(socket string, timeout time.Duration) (int, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.Dial("unix", socket)
	if err != nil {
		return 0, fmt.Errorf("connecting to BIRD to find its config: %w", err)
	}
	defer c.Close()
	raw, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("finding BIRD's process: %w", err)
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, fmt.Errorf("finding BIRD's process: %w", err)
	}
	if serr != nil {
		return 0, fmt.Errorf("finding BIRD's process (SO_PEERCRED): %w", serr)
	}
	if cred.Pid <= 0 {
		return 0, errors.New("finding BIRD's process: the kernel did not say (another PID namespace?)")
	}
	return int(cred.Pid), nil
}

// listenerPID returns the process that holds the listening socket bound at
// path: the socket's inode from /proc/net/unix, then the process with a
// descriptor for that inode in /proc/*/fd.
func listenerPID(path string) (int, error) {
	table, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		return 0, err
	}
	inodes := ListeningInodes(table, path)
	if len(inodes) == 0 {
		return 0, fmt.Errorf("no listening socket at %s in /proc/net/unix", path)
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid <= 0 {
			continue
		}
		fds, err := os.ReadDir("/proc/" + p.Name() + "/fd")
		if err != nil {
			continue // gone, or not ours to read
		}
		for _, fd := range fds {
			link, err := os.Readlink("/proc/" + p.Name() + "/fd/" + fd.Name())
			if err != nil {
				continue
			}
			for _, ino := range inodes {
				if link == "socket:["+ino+"]" {
					return pid, nil
				}
			}
		}
	}
	return 0, fmt.Errorf("no process holds the socket at %s", path)
}

// ListeningInodes returns the inodes of the listening sockets bound at
// path in table, the contents of /proc/net/unix: "Num RefCount Protocol
// Flags Type St Inode Path", Flags 00010000 for a listening socket.
func ListeningInodes(table []byte, path string) []string {
	var out []string
	for _, line := range strings.Split(string(table), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || f[3] != "00010000" {
			continue
		}
		if strings.Join(f[7:], " ") == path {
			out = append(out, f[6])
		}
	}
	return out
}

// maxConfSize bounds each config file read.
const maxConfSize = 4 << 20

// FileSystem returns ReadFile and Glob that read the paths bird.conf
// names under root ("/" for the paths as they are).
func FileSystem(root string) (ReadFile, Glob) {
	read := func(p string) ([]byte, error) {
		f, err := os.Open(filepath.Join(root, p))
		if err != nil {
			return nil, unrooted(err, root)
		}
		defer f.Close()
		var b bytes.Buffer
		if _, err := io.Copy(&b, io.LimitReader(f, maxConfSize+1)); err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		if b.Len() > maxConfSize {
			return nil, fmt.Errorf("%s is larger than %d bytes", p, maxConfSize)
		}
		return b.Bytes(), nil
	}
	glob := func(pattern string) ([]string, error) {
		matches, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			return nil, err
		}
		out := make([]string, 0, len(matches))
		for _, m := range matches {
			rel, err := filepath.Rel(root, m)
			if err != nil {
				return nil, err
			}
			out = append(out, "/"+filepath.ToSlash(rel))
		}
		return out, nil
	}
	return read, glob
}

// unrooted names the file in a read error as bird.conf does, not as
// /proc/PID/root/... .
func unrooted(err error, root string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && root != "/" {
		pe.Path = "/" + strings.TrimPrefix(strings.TrimPrefix(pe.Path, root), "/")
	}
	return err
}

// Watched returns the path through which this process sees the config
// file, for watching it (inotify reports an open in the directory of the
// file opened, so symbolic links are resolved where they can be): Path
// itself when BIRD shares this process's mount namespace; else the path
// through Root when this process may look there; else Path itself when
// it exists here, as in a mount namespace copied from BIRD's (systemd's
// PrivateMounts= gives wgbird one, and its ProtectProc= and capabilities
// keep it out of BIRD's /proc/PID/root). A wrong guess costs the reload
// watcher its signs, which it notices and reports at the next reload.
func (l Located) Watched() (string, error) {
	self, err1 := os.Readlink("/proc/self/ns/mnt")
	bird, err2 := os.Readlink(filepath.Join(filepath.Dir(l.Root), "ns", "mnt"))
	if err1 == nil && err2 == nil && self == bird {
		return existing(l.Path)
	}
	if name := filepath.Join(l.Root, l.Path); exists(name) {
		return name, nil
	}
	return existing(l.Path)
}

// DefaultConfig returns the first of DefaultConfigs that exists in this
// process's mount namespace, for when BIRD's process cannot be seen
// (ProtectProc=, or no BIRD running yet).
func DefaultConfig() (string, error) {
	for _, p := range DefaultConfigs {
		if exists(p) {
			return existing(p)
		}
	}
	return "", fmt.Errorf("none of %s exists", strings.Join(DefaultConfigs, ", "))
}

func exists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

// existing returns name with symbolic links resolved, if it exists.
func existing(name string) (string, error) {
	if real, err := filepath.EvalSymlinks(name); err == nil {
		name = real
	}
	if _, err := os.Stat(name); err != nil {
		return "", fmt.Errorf("BIRD's config file: %w", err)
	}
	return name, nil
}

// String names the config and the BIRD process reading it.
func (l Located) String() string {
	return l.Path + " (BIRD pid " + strconv.Itoa(l.PID) + ")"
}
