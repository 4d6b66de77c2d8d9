package bird

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ConfigFile finds the configuration file of the BIRD listening on
// socketPath, for watching it: the process behind the socket
// (SO_PEERCRED), its -c option, else its -l (bird.conf in its working
// directory), else the default its binary prints in --help. The path
// returned names the file in wgbird's mount namespace, through
// /proc/PID/root when BIRD has another one.
func ConfigFile(ctx context.Context, socketPath string) (path string, pid int, err error) {
	pid, err = socketPeer(ctx, socketPath)
	if err != nil {
		return "", 0, err
	}
	proc := fmt.Sprintf("/proc/%d", pid)
	cmdline, err := os.ReadFile(proc + "/cmdline")
	if err != nil {
		return "", pid, fmt.Errorf("reading BIRD's command line: %w", err)
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	name, err := configArg(args, func() (string, error) {
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		out, err := exec.CommandContext(hctx, proc+"/exe", "--help").Output()
		if err != nil && len(out) == 0 {
			return "", fmt.Errorf("running BIRD's binary with --help: %w", err)
		}
		return string(out), nil
	})
	if err != nil {
		return "", pid, err
	}
	if !filepath.IsAbs(name) {
		cwd, err := os.Readlink(proc + "/cwd")
		if err != nil {
			return "", pid, fmt.Errorf("reading BIRD's working directory: %w", err)
		}
		name = filepath.Join(cwd, name)
	}
	name, err = watchable(name, proc, sameMountNS(proc))
	return name, pid, err
}

// watchable returns the path through which wgbird sees BIRD's
// configuration file name, as inotify reports it: the file itself, not a
// symbolic link to it (an open is reported in the directory of the file
// opened). In another mount namespace the path goes through proc's root,
// where links are left alone: they would resolve in wgbird's namespace.
func watchable(name, proc string, sameNS bool) (string, error) {
	if !sameNS {
		name = proc + "/root" + name
	} else if real, err := filepath.EvalSymlinks(name); err == nil {
		name = real
	}
	if _, err := os.Stat(name); err != nil {
		return "", fmt.Errorf("BIRD's configuration file: %w", err)
	}
	return name, nil
}

// socketPeer returns the pid of the process listening on a Unix socket.
func socketPeer(ctx context.Context, path string) (int, error) {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := d.DialContext(dctx, "unix", path)
	if err != nil {
		return 0, fmt.Errorf("connecting to BIRD: %w", err)
	}
	defer c.Close()
	rc, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, fmt.Errorf("reading the BIRD socket's peer: %w", cerr)
	}
	if cred.Pid <= 0 {
		return 0, errors.New("reading the BIRD socket's peer: no process (another PID namespace)")
	}
	return int(cred.Pid), nil
}

func sameMountNS(proc string) bool {
	self, err1 := os.Readlink("/proc/self/ns/mnt")
	other, err2 := os.Readlink(proc + "/ns/mnt")
	return err1 == nil && err2 == nil && self == other
}

// configArg returns the configuration file a BIRD started with args
// reads: its -c (as getopt reads BIRD's "bc:dD:ps:P:u:g:flRh"), else
// "bird.conf" for -l, else the default help reports.
func configArg(args []string, help func() (string, error)) (string, error) {
	const withArg = "cDsPug"
	var conf string
	local := false
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if len(a) < 2 || a[0] != '-' {
			continue // getopt would permute; BIRD takes no operands
		}
		for j := 1; j < len(a); j++ {
			o := a[j]
			if !strings.ContainsRune(withArg, rune(o)) {
				if o == 'l' {
					local = true
				}
				continue
			}
			v := a[j+1:]
			if v == "" {
				if i+1 >= len(args) {
					return "", fmt.Errorf("BIRD's -%c has no value", o)
				}
				i++
				v = args[i]
			}
			if o == 'c' {
				conf = v
			}
			break
		}
	}
	switch {
	case conf != "":
		return conf, nil
	case local:
		return "bird.conf", nil
	}
	out, err := help()
	if err != nil {
		return "", err
	}
	return defaultFromHelp(out)
}

// defaultFromHelp reads the default configuration file from BIRD's
// --help, which says (BIRD 2 and 3):
//
//	-c <config-file>     Use given configuration file instead of
//	                     /etc/bird/bird.conf
func defaultFromHelp(help string) (string, error) {
	lines := strings.Split(help, "\n")
	for i, l := range lines {
		if strings.Contains(l, "-c ") && strings.Contains(l, "instead of") && i+1 < len(lines) {
			if f := strings.Fields(lines[i+1]); len(f) == 1 && filepath.IsAbs(f[0]) {
				return f[0], nil
			}
		}
	}
	return "", fmt.Errorf("BIRD's --help names no default configuration file: %q", firstLine(help))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}
