package lab

import (
	"context"
	"syscall"
	"time"
)

// What the failover benchmark (internal/labbench) drives beyond the
// fault API: the lab's paths, its daemons one by one, and other
// processes in a server's namespace.

// Path is file in node's directory of the lab.
func (l *Lab) Path(node, file string) string { return l.path(node, file) }

// StopBird stops node's BIRD if it runs.
func (l *Lab) StopBird(ctx context.Context, node string) error { return l.stopBird(ctx, node) }

// EnsureWireGuard restores node's wg0 to the lab's configuration: it
// restarts wireguard-go if it is gone and sets key, port, peers,
// addresses and the link's state again.
func (l *Lab) EnsureWireGuard(ctx context.Context, node string) error {
	return l.ensureWireGuard(ctx, node)
}

// RunWgbird starts wgbird on server with the config file conf and waits
// up to wait for its control socket to answer.
func (l *Lab) RunWgbird(ctx context.Context, server, conf string, wait time.Duration) error {
	return l.runWgbird(ctx, server, conf, wait)
}

// StartProcess starts argv detached in server's namespace with the
// server's private /run/wireguard; its pid and output go to NAME.pid and
// NAME.log in the server's directory.
func (l *Lab) StartProcess(server, name string, argv []string) (pid int, err error) {
	return startDaemon(daemon{
		ns:      l.NS(server),
		wgDir:   l.path(server, "wireguard"),
		argv:    argv,
		pidFile: l.path(server, name+".pid"),
		logFile: l.path(server, name+".log"),
	})
}

// Alive reports whether pid exists and is not a zombie.
func Alive(pid int) bool { return readProc(pid).Alive }

// Stopped reports whether pid is stopped (SIGSTOP).
func Stopped(pid int) bool { return readProc(pid).Stopped }

// StopPid sends sig, then SIGKILL after grace if the process is still
// there, and waits for it to exit.
func StopPid(ctx context.Context, pid int, sig syscall.Signal, grace time.Duration) error {
	return stopPid(ctx, pid, sig, grace)
}

// Poll calls f every step until it returns true, an error, or timeout.
func Poll(ctx context.Context, timeout, step time.Duration, what string, f func() (bool, error)) error {
	return poll(ctx, timeout, step, what, f)
}

// Run runs a command with the lab's deadline and returns its combined
// output; the error names the command and carries its output.
func Run(ctx context.Context, name string, args ...string) (string, error) {
	return run(ctx, name, args...)
}

// Tail returns the last n lines of a file, for error messages.
func Tail(path string, n int) string { return tail(path, n) }

// NSExists reports whether the named network namespace exists.
func NSExists(name string) bool { return nsExists(name) }
