package labproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// CmdTimeout bounds every helper command (ip, wg, birdc, wgbird control
// commands): a hung wireguard-go must never hang the lab.
const CmdTimeout = 10 * time.Second

// WrapScript runs "$@" with a private /run/wireguard bound from "$0".
// /var/run/wireguard is shared by all network namespaces; `ip netns exec`
// gives each process its own mount namespace, so the bind mount is private
// to the process and vanishes with it.
const WrapScript = `mkdir -p /run/wireguard && mount --bind "$0" /run/wireguard && exec "$@"`

// Run runs a command with a deadline and returns its combined output. The
// error names the command and carries its output.
func Run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, CmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("running %s: %w: %s", strings.Join(append([]string{name}, args...), " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// InNS runs a command in a network namespace.
func InNS(ctx context.Context, ns string, argv ...string) (string, error) {
	return Run(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...)
}

// InNSWG runs a command in a network namespace with wgDir as its
// /run/wireguard.
func InNSWG(ctx context.Context, ns, wgDir string, argv ...string) (string, error) {
	return Run(ctx, "ip", append([]string{"netns", "exec", ns, "sh", "-c", WrapScript, wgDir}, argv...)...)
}

// Daemon describes a long-running process of the lab.
type Daemon struct {
	NS      string   // network namespace
	WGDir   string   // private /run/wireguard, "" for none
	Argv    []string // command
	PIDFile string
	LogFile string
}

// StartDaemon starts d detached (own session, so it outlives a CLI
// invocation and ignores the terminal's Ctrl-C), records its pid and reaps
// it when it exits while this process lives. `ip netns exec` and the
// wrapper script exec the command, so the pid is the daemon's own.
func StartDaemon(d Daemon) (int, error) {
	closeInheritedOnce.Do(closeInheritedFDs)
	argv := []string{"netns", "exec", d.NS}
	if d.WGDir != "" {
		argv = append(argv, "sh", "-c", WrapScript, d.WGDir)
	}
	argv = append(argv, d.Argv...)
	logf, err := os.OpenFile(d.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("opening log of %s: %w", d.Argv[0], err)
	}
	defer logf.Close()
	cmd := exec.Command("ip", argv...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting %s in %s: %w", d.Argv[0], d.NS, err)
	}
	pid := cmd.Process.Pid
	go func() { _ = cmd.Wait() }() // reap: a zombie would look alive
	if err := os.WriteFile(d.PIDFile, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		return 0, fmt.Errorf("writing %s: %w", d.PIDFile, err)
	}
	return pid, nil
}

var closeInheritedOnce sync.Once

// closeInheritedFDs marks every descriptor above stderr close-on-exec, so
// the lab's daemons, which outlive this process, never hold what this
// process inherited: a lock taken with `flock LOCK wgbird-lab up` would
// otherwise stay held by BIRD and wireguard-go until `down`. Go opens its
// own descriptors close-on-exec already.
func closeInheritedFDs() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		syscall.CloseOnExec(fd)
	}
}

// State is what /proc says about a pid.
type State struct {
	Alive   bool // exists and is not a zombie
	Stopped bool // SIGSTOPped
	Comm    string
}

// ReadState reads /proc/PID/stat.
func ReadState(pid int) State {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return State{}
	}
	return parseStat(string(b))
}

// parseStat parses the Comm and state fields of /proc/PID/stat.
func parseStat(s string) State {
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open || len(s) < closing+3 {
		return State{}
	}
	st := s[closing+2]
	return State{
		Alive:   st != 'Z' && st != 'X' && st != 'x',
		Stopped: st == 'T' || st == 't',
		Comm:    s[open+1 : closing],
	}
}

// Comm is the kernel's name for a process started from path: its base
// name cut to 15 bytes.
func Comm(path string) string {
	c := filepath.Base(path)
	if len(c) > 15 {
		c = c[:15]
	}
	return c
}

// PidOf returns the pid in pidFile if that process is alive and is named
// name; 0 otherwise (no file, dead, or the pid was reused).
func PidOf(pidFile, name string) int {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	st := ReadState(pid)
	if !st.Alive || st.Comm != Comm(name) {
		return 0
	}
	return pid
}

// WaitGone waits until pid has exited (or is a zombie).
func WaitGone(ctx context.Context, pid int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for ReadState(pid).Alive || threadsLive(pid) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for pid %d to exit: %w", pid, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// threadsLive reports whether any thread of pid is still alive. A killed
// multi-threaded process shows as a zombie as soon as its main thread is
// gone, while other threads may still be exiting and holding its
// descriptors (its control socket; a packet socket takes an RCU grace
// period to close): until they are gone a new daemon finds the old one
// still answering and refuses to start.
func threadsLive(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return false
	}
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, t.Name()))
		if err == nil && parseStat(string(b)).Alive {
			return true
		}
	}
	return false
}

// StopPid sends sig, then SIGKILL after grace if the process is still
// there, and waits for it to exit.
func StopPid(ctx context.Context, pid int, sig syscall.Signal, grace time.Duration) error {
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling pid %d: %w", pid, err)
	}
	if sig == syscall.SIGKILL {
		return WaitGone(ctx, pid, 5*time.Second)
	}
	_ = syscall.Kill(pid, syscall.SIGCONT) // a stopped process cannot exit
	if WaitGone(ctx, pid, grace) == nil {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	return WaitGone(ctx, pid, 5*time.Second)
}

// Poll calls f every step until it returns true, an error, or timeout.
func Poll(ctx context.Context, timeout, step time.Duration, what string, f func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		ok, err := f()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("waiting for %s: %w (last error: %v)", what, ctx.Err(), last)
			}
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(step):
		}
	}
}

// Tail returns the last n lines of a file, for error messages.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
