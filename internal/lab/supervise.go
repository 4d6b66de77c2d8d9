package lab

import (
	"context"
	"time"

	"github.com/wgbird/wgbird/internal/labproc"
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
// up to wait for its control socket to answer. It runs with --pprof, as
// the lab's own wgbird does.
func (l *Lab) RunWgbird(ctx context.Context, server, conf string, wait time.Duration) error {
	return l.runWgbird(ctx, server, conf, wait, true)
}

// RunWgbirdPlain is RunWgbird without --pprof, as an operator runs it:
// for measuring its cost (memory profiling, which --pprof turns on, keeps
// records of its own).
func (l *Lab) RunWgbirdPlain(ctx context.Context, server, conf string, wait time.Duration) error {
	return l.runWgbird(ctx, server, conf, wait, false)
}

// StartProcess starts argv detached in server's namespace with the
// server's private /run/wireguard; its pid and output go to NAME.pid and
// NAME.log in the server's directory.
func (l *Lab) StartProcess(server, name string, argv []string) (pid int, err error) {
	return labproc.StartDaemon(labproc.Daemon{
		NS:      l.NS(server),
		WGDir:   l.path(server, "wireguard"),
		Argv:    argv,
		PIDFile: l.path(server, name+".pid"),
		LogFile: l.path(server, name+".log"),
	})
}

// NSExists reports whether the named network namespace exists.
func NSExists(name string) bool { return nsExists(name) }
