package lab

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

// cmdTimeout bounds every helper command (ip, wg, birdc, wgbird control
// commands): a hung wireguard-go must never hang the lab.
const cmdTimeout = 10 * time.Second

// wrapScript runs "$@" with a private /run/wireguard bound from "$0".
// /var/run/wireguard is shared by all network namespaces; `ip netns exec`
// gives each process its own mount namespace, so the bind mount is private
// to the process and vanishes with it.
const wrapScript = `mkdir -p /run/wireguard && mount --bind "$0" /run/wireguard && exec "$@"`

// run runs a command with a deadline and returns its combined output. The
// error names the command and carries its output.
func run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
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

// inNS runs a command in a network namespace.
func inNS(ctx context.Context, ns string, argv ...string) (string, error) {
	return run(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...)
}

// inNSWG runs a command in a network namespace with wgDir as its
// /run/wireguard.
func inNSWG(ctx context.Context, ns, wgDir string, argv ...string) (string, error) {
	return run(ctx, "ip", append([]string{"netns", "exec", ns, "sh", "-c", wrapScript, wgDir}, argv...)...)
}

// daemon describes a long-running process of the lab.
type daemon struct {
	ns      string   // network namespace
	wgDir   string   // private /run/wireguard, "" for none
	argv    []string // command
	pidFile string
	logFile string
}

// startDaemon starts d detached (own session, so it outlives a CLI
// invocation and ignores the terminal's Ctrl-C), records its pid and reaps
// it when it exits while this process lives. `ip netns exec` and the
// wrapper script exec the command, so the pid is the daemon's own.
func startDaemon(d daemon) (int, error) {
	closeInheritedOnce.Do(closeInheritedFDs)
	argv := []string{"netns", "exec", d.ns}
	if d.wgDir != "" {
		argv = append(argv, "sh", "-c", wrapScript, d.wgDir)
	}
	argv = append(argv, d.argv...)
	logf, err := os.OpenFile(d.logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("opening log of %s: %w", d.argv[0], err)
	}
	defer logf.Close()
	cmd := exec.Command("ip", argv...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting %s in %s: %w", d.argv[0], d.ns, err)
	}
	pid := cmd.Process.Pid
	go func() { _ = cmd.Wait() }() // reap: a zombie would look alive
	if err := os.WriteFile(d.pidFile, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		return 0, fmt.Errorf("writing %s: %w", d.pidFile, err)
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

// procState is what /proc says about a pid.
type procState struct {
	Alive   bool // exists and is not a zombie
	Stopped bool // SIGSTOPped
	Comm    string
}

// readProc reads /proc/PID/stat.
func readProc(pid int) procState {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procState{}
	}
	return parseStat(string(b))
}

// parseStat parses the comm and state fields of /proc/PID/stat.
func parseStat(s string) procState {
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open || len(s) < closing+3 {
		return procState{}
	}
	st := s[closing+2]
	return procState{
		Alive:   st != 'Z' && st != 'X' && st != 'x',
		Stopped: st == 'T' || st == 't',
		Comm:    s[open+1 : closing],
	}
}

// comm is the kernel's name for a process started from path: its base
// name cut to 15 bytes.
func comm(path string) string {
	c := filepath.Base(path)
	if len(c) > 15 {
		c = c[:15]
	}
	return c
}

// pidOf returns the pid in pidFile if that process is alive and is named
// name; 0 otherwise (no file, dead, or the pid was reused).
func pidOf(pidFile, name string) int {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	st := readProc(pid)
	if !st.Alive || st.Comm != comm(name) {
		return 0
	}
	return pid
}

// waitGone waits until pid has exited (or is a zombie).
func waitGone(ctx context.Context, pid int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for readProc(pid).Alive || threadsLive(pid) {
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

// stopPid sends sig, then SIGKILL after grace if the process is still there.
func stopPid(ctx context.Context, pid int, sig syscall.Signal, grace time.Duration) error {
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling pid %d: %w", pid, err)
	}
	if sig == syscall.SIGKILL {
		return waitGone(ctx, pid, 5*time.Second)
	}
	_ = syscall.Kill(pid, syscall.SIGCONT) // a stopped process cannot exit
	if waitGone(ctx, pid, grace) == nil {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	return waitGone(ctx, pid, 5*time.Second)
}

// poll calls f every step until it returns true, an error, or timeout.
func poll(ctx context.Context, timeout, step time.Duration, what string, f func() (bool, error)) error {
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

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
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
