package labproc

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// UnmountUnder lazily unmounts every mount point of this mount namespace
// under dir, deepest first. The lab's own bind mounts live in private
// mount namespaces and die with their processes; this catches anything a
// person mounted by hand.
func UnmountUnder(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", dir, err)
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("reading mounts: %w", err)
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMount(fields[4])
		if p == abs || strings.HasPrefix(p, abs+"/") {
			points = append(points, p)
		}
	}
	var errs []error
	for i := len(points) - 1; i >= 0; i-- {
		if err := syscall.Unmount(points[i], syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", points[i], err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ArgUnder reports whether one of pid's command-line arguments is a path
// under dir (BIRD and wgbird name the lab's files on theirs).
func ArgUnder(pid int, dir string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	for _, arg := range strings.Split(string(b), "\x00") {
		if strings.HasPrefix(arg, filepath.Clean(dir)+"/") {
			return true
		}
	}
	return false
}

// BindsWireGuard reports whether pid runs with dir bound on
// /run/wireguard (the lab's wireguard-go and wgbird do).
func BindsWireGuard(pid int, dir string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return false
	}
	return bindsWireGuard(string(b), dir)
}

// bindsWireGuard reports whether a /proc/PID/mountinfo has dir bound on
// /run/wireguard. The root field is dir relative to its file system's
// mount point, so dir's own path must end with it.
func bindsWireGuard(mountinfo, dir string) bool {
	dir = filepath.Clean(dir)
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || unescapeMount(f[4]) != "/run/wireguard" {
			continue
		}
		root := unescapeMount(f[3])
		if root != "/" && strings.HasSuffix(dir, root) {
			return true
		}
	}
	return false
}
