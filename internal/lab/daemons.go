package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/wgbird/wgbird/internal/labproc"
)

// startBird writes node's bird.conf and starts BIRD unless it runs, then
// waits until its control socket answers.
func (l *Lab) startBird(ctx context.Context, node string) error {
	conf := l.path(node, "bird.conf")
	logFile := l.path(node, "bird.log")
	text, err := l.birdConf(node, logFile)
	if err != nil {
		return err
	}
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", conf, err)
	}
	pidFile := l.path(node, "bird.pid")
	if pid := labproc.PidOf(pidFile, "bird"); pid > 0 {
		if labproc.ReadState(pid).Stopped {
			// Hung by HangBird.
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				return fmt.Errorf("continuing BIRD on %s: %w", node, err)
			}
		}
		return nil
	}
	sock := l.BirdSocket(node)
	pid, err := labproc.StartDaemon(labproc.Daemon{
		NS: l.NS(node),
		// -f keeps BIRD in the foreground so the pid we started is BIRD's.
		Argv:    []string{l.birdBin(), "-f", "-c", conf, "-s", sock, "-P", pidFile},
		PIDFile: pidFile,
		LogFile: l.path(node, "bird.out"),
	})
	if err != nil {
		return err
	}
	err = labproc.Poll(ctx, 5*time.Second, 20*time.Millisecond, "BIRD on "+node, func() (bool, error) {
		if !labproc.ReadState(pid).Alive {
			return false, fmt.Errorf("bird exited: %s", labproc.Tail(l.path(node, "bird.out"), 5))
		}
		return birdAnswers(sock), nil
	})
	if err != nil {
		return fmt.Errorf("starting BIRD on %s: %w", node, err)
	}
	l.log.Debug("bird started", "node", node, "pid", pid)
	return nil
}

// birdAnswers reports whether BIRD greets on its control socket (a stale
// socket file refuses the connection).
func birdAnswers(sock string) bool {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "0001 ")
}

// stopBird stops node's BIRD: SIGTERM (BIRD closes its BGP sessions with a
// Cease), SIGKILL after 3 s.
func (l *Lab) stopBird(ctx context.Context, node string) error {
	pid := labproc.PidOf(l.path(node, "bird.pid"), "bird")
	if pid == 0 {
		return nil
	}
	return labproc.StopPid(ctx, pid, syscall.SIGTERM, 3*time.Second)
}

// birdc runs birdc against node's BIRD.
func (l *Lab) birdc(ctx context.Context, node string, args ...string) (string, error) {
	return labproc.Run(ctx, l.birdcBin(), append([]string{"-s", l.BirdSocket(node)}, args...)...)
}

// birdBin is the bird the lab runs: Config.Bird, or bird from PATH.
func (l *Lab) birdBin() string {
	if l.cfg.Bird != "" {
		return l.cfg.Bird
	}
	return "bird"
}

// birdcBin is the birdc next to Config.Bird, or birdc from PATH.
func (l *Lab) birdcBin() string {
	if l.cfg.Bird != "" {
		return filepath.Join(filepath.Dir(l.cfg.Bird), "birdc")
	}
	return "birdc"
}

// birdVersion returns the version the lab's bird reports ("2.0.12"),
// checking that it and its birdc exist.
func (l *Lab) birdVersion(ctx context.Context) (string, error) {
	for _, b := range []string{l.birdBin(), l.birdcBin()} {
		if _, err := exec.LookPath(b); err != nil {
			return "", fmt.Errorf("the lab's BIRD: %w (install bird2, or pass --bird PATH)", err)
		}
	}
	out, err := labproc.Run(ctx, l.birdBin(), "--version")
	v, ok := strings.CutPrefix(strings.TrimSpace(out), "BIRD version ")
	if err != nil || !ok {
		return "", fmt.Errorf("%s --version: %q, %v", l.birdBin(), strings.TrimSpace(out), err)
	}
	return v, nil
}

// BirdVersion returns the version of the BIRD the lab runs.
func (l *Lab) BirdVersion(ctx context.Context) (string, error) { return l.birdVersion(ctx) }

// wg runs wg(8) in node's namespace against its private /run/wireguard.
func (l *Lab) wg(ctx context.Context, node string, args ...string) (string, error) {
	return labproc.InNSWG(ctx, l.NS(node), l.path(node, "wireguard"), append([]string{"wg"}, args...)...)
}

// wgSocket is wireguard-go's UAPI socket of node.
func (l *Lab) wgSocket(node string) string { return l.path(node, "wireguard/"+WGInterface+".sock") }

// linkExists reports whether node has an interface called name.
func (l *Lab) linkExists(ctx context.Context, node, name string) bool {
	_, err := labproc.Run(ctx, "ip", "-n", l.NS(node), "link", "show", "dev", name)
	return err == nil
}

// ensureWireGuard makes node's wg0 whole, whatever was done to it:
// wireguard-go running and not stopped, the interface present with its
// key, port and peers, its addresses, and up. It is the heal of every
// WireGuard fault and the set-up of `up`.
func (l *Lab) ensureWireGuard(ctx context.Context, node string) error {
	if l.cfg.KernelWireGuard {
		if !l.linkExists(ctx, node, WGInterface) {
			if _, err := labproc.Run(ctx, "ip", "-n", l.NS(node), "link", "add", WGInterface, "type", "wireguard"); err != nil {
				return fmt.Errorf("adding kernel WireGuard wg0 on %s: %w", node, err)
			}
		}
		return l.configureWireGuard(ctx, node)
	}
	pidFile := l.path(node, "wireguard-go.pid")
	pid := labproc.PidOf(pidFile, "wireguard-go")
	if pid > 0 && labproc.ReadState(pid).Stopped {
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			return fmt.Errorf("continuing wireguard-go on %s: %w", node, err)
		}
	}
	if pid > 0 && !l.linkExists(ctx, node, WGInterface) {
		// wireguard-go exits when its TUN goes; one without it is useless.
		if err := labproc.StopPid(ctx, pid, syscall.SIGKILL, 0); err != nil {
			return err
		}
		pid = 0
	}
	if pid == 0 {
		if err := l.startWireGuardGo(ctx, node); err != nil {
			return err
		}
	}
	return l.configureWireGuard(ctx, node)
}

// configureWireGuard gives node's existing wg0 its key, port, peers and
// addresses, and sets it up.
func (l *Lab) configureWireGuard(ctx context.Context, node string) error {
	if _, err := l.wg(ctx, node, "syncconf", WGInterface, l.path(node, "wg0.conf")); err != nil {
		return fmt.Errorf("configuring wg0 on %s: %w", node, err)
	}
	addrs := []string{VIP.String(), TunnelServer.String()}
	if c, err := ClientByName(node); err == nil {
		addrs = []string{c.Tunnel.String()}
	}
	ns := l.NS(node)
	for _, a := range addrs {
		if _, err := labproc.Run(ctx, "ip", "-n", ns, "addr", "replace", a, "dev", WGInterface); err != nil {
			return fmt.Errorf("addressing wg0 on %s: %w", node, err)
		}
	}
	if _, err := labproc.Run(ctx, "ip", "-n", ns, "link", "set", WGInterface, "up"); err != nil {
		return fmt.Errorf("setting wg0 up on %s: %w", node, err)
	}
	return nil
}

func (l *Lab) startWireGuardGo(ctx context.Context, node string) error {
	sock := l.wgSocket(node)
	// A killed wireguard-go leaves its socket behind.
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing stale %s: %w", sock, err)
	}
	if l.linkExists(ctx, node, WGInterface) {
		if _, err := labproc.Run(ctx, "ip", "-n", l.NS(node), "link", "del", WGInterface); err != nil {
			return err
		}
	}
	logFile := l.path(node, "wireguard-go.log")
	pid, err := labproc.StartDaemon(labproc.Daemon{
		NS:      l.NS(node),
		WGDir:   l.path(node, "wireguard"),
		Argv:    []string{"wireguard-go", "-f", WGInterface},
		PIDFile: l.path(node, "wireguard-go.pid"),
		LogFile: logFile,
	})
	if err != nil {
		return err
	}
	err = labproc.Poll(ctx, 5*time.Second, 20*time.Millisecond, "wireguard-go on "+node, func() (bool, error) {
		if !labproc.ReadState(pid).Alive {
			return false, fmt.Errorf("wireguard-go exited: %s", labproc.Tail(logFile, 5))
		}
		c, err := net.DialTimeout("unix", sock, time.Second)
		if err != nil {
			return false, nil
		}
		c.Close()
		return l.linkExists(ctx, node, WGInterface), nil
	})
	if err != nil {
		return fmt.Errorf("starting wireguard-go on %s: %w", node, err)
	}
	l.log.Debug("wireguard-go started", "node", node, "pid", pid)
	return nil
}

// WireGuardGoPid returns the pid of node's wireguard-go, 0 if none runs.
func (l *Lab) WireGuardGoPid(node string) int {
	return labproc.PidOf(l.path(node, "wireguard-go.pid"), "wireguard-go")
}

// WgbirdPid returns the pid of server's wgbird, 0 if none runs.
func (l *Lab) WgbirdPid(server string) int {
	return labproc.PidOf(l.path(server, "wgbird.pid"), l.wgbirdName())
}

// StartWgbird starts wgbird on server unless it runs (a no-op without a
// wgbird binary) and waits for its control socket.
func (l *Lab) StartWgbird(ctx context.Context, server string) error {
	return l.ensureWgbird(ctx, server)
}

func (l *Lab) ensureWgbird(ctx context.Context, server string) error {
	if l.cfg.Wgbird == "" {
		return nil
	}
	conf := l.path(server, "wgbird.toml")
	text, err := l.wgbirdConf(server)
	if err != nil {
		return fmt.Errorf("writing %s: %w", conf, err)
	}
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", conf, err)
	}
	if pid := l.WgbirdPid(server); pid > 0 {
		if labproc.ReadState(pid).Stopped {
			// Hung by HangWgbird.
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				return fmt.Errorf("continuing wgbird on %s: %w", server, err)
			}
		}
		return nil
	}
	return l.runWgbird(ctx, server, conf, 5*time.Second, true)
}

// runWgbird starts wgbird on server with the config file conf and waits up
// to wait for its control socket to answer. With pprof it runs with
// --pprof: the soak reads its heap through the control socket (see
// labsoak.WgbirdHeap).
func (l *Lab) runWgbird(ctx context.Context, server, conf string, wait time.Duration, pprof bool) error {
	argv := []string{l.cfg.Wgbird, "run", "--config", conf}
	if pprof {
		argv = []string{l.cfg.Wgbird, "run", "--pprof", "--config", conf}
	}
	logFile := l.WgbirdLog(server)
	pid, err := labproc.StartDaemon(labproc.Daemon{
		NS:      l.NS(server),
		WGDir:   l.path(server, "wireguard"),
		Argv:    argv,
		PIDFile: l.path(server, "wgbird.pid"),
		LogFile: logFile,
	})
	if err != nil {
		return err
	}
	err = labproc.Poll(ctx, wait, 20*time.Millisecond, "wgbird on "+server, func() (bool, error) {
		if !labproc.ReadState(pid).Alive {
			return false, fmt.Errorf("wgbird exited: %s", labproc.Tail(logFile, 5))
		}
		c, err := net.DialTimeout("unix", l.ControlSocket(server), time.Second)
		if err != nil {
			return false, nil
		}
		c.Close()
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("starting wgbird on %s: %w", server, err)
	}
	l.log.Debug("wgbird started", "server", server, "pid", pid)
	return nil
}

// KillWgbird kills server's wgbird with SIGKILL, as a crash would.
func (l *Lab) KillWgbird(ctx context.Context, server string) error {
	pid := l.WgbirdPid(server)
	if pid == 0 {
		return fmt.Errorf("wgbird is not running on %s", server)
	}
	return labproc.StopPid(ctx, pid, syscall.SIGKILL, 0)
}

// wgbirdCtl runs a wgbird control command against server's control socket.
// Unix sockets are found by path, so it needs no namespace.
func (l *Lab) wgbirdCtl(ctx context.Context, server string, args ...string) (string, error) {
	if l.cfg.Wgbird == "" {
		return "", errors.New("the lab runs no wgbird")
	}
	argv := append([]string{args[0], "--socket", l.ControlSocket(server)}, args[1:]...)
	return labproc.Run(ctx, l.cfg.Wgbird, argv...)
}

// Drain drains server through wgbird's control socket.
func (l *Lab) Drain(ctx context.Context, server, reason string) error {
	_, err := l.wgbirdCtl(ctx, server, "drain", "--reason", reason)
	return err
}

// Undrain undrains server through wgbird's control socket.
func (l *Lab) Undrain(ctx context.Context, server string) error {
	_, err := l.wgbirdCtl(ctx, server, "undrain")
	return err
}

// WgbirdStatus returns `wgbird status --json` of server.
func (l *Lab) WgbirdStatus(ctx context.Context, server string) (json.RawMessage, error) {
	out, err := l.wgbirdCtl(ctx, server, "status", "--json")
	if err != nil {
		return nil, err
	}
	raw := json.RawMessage(strings.TrimSpace(out))
	if !json.Valid(raw) {
		return nil, fmt.Errorf("wgbird status: not JSON: %.200s", out)
	}
	return raw, nil
}

// Missing reports which of the lab's prerequisites are missing (nft
// loads the home network's NAT rules).
func Missing() []string {
	var missing []string
	for _, b := range []string{"ip", "bird", "birdc", "wireguard-go", "wg", "sysctl", "sh", "mount", "nft"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	return missing
}
