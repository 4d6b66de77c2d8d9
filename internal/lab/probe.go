package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/wgbird/wgbird/internal/probe"
)

// KeyRotate is the fault that only wgbird's active probe catches: the
// server's WireGuard private key is replaced by another one, as when one
// anycast server reloads or restarts with a rotated key the others (and
// the clients) do not have. wg0 keeps a key, its port and its peers, so
// every passive check stays green; clients routed to it can no longer
// handshake. The new key is set in place (wg set private-key), which is
// where a restart with the wrong key ends up, without the restart's link
// flap that the link check would catch on its own. Heal restores the key
// from wg0.conf.
const KeyRotate Mode = "key-rotate"

// KeyRotateInfo describes KeyRotate for --help and tests. It needs wgbird
// running with the probe (EnableProbe) to be detected at all.
var KeyRotateInfo = ModeInfo{Mode: KeyRotate, Help: "replace wg0's private key with another one (anycast key drift after a rotation; only the active probe catches it)"}

// ProbeKeyFile returns the path of a server's probe private key.
func (l *Lab) ProbeKeyFile(server string) string { return l.path(server, "probe.key") }

// ProbeWgbirdConf returns the path of the wgbird.toml with the probe that
// EnableProbe writes for a server.
func (l *Lab) ProbeWgbirdConf(server string) string { return l.path(server, "wgbird-probe.toml") }

// ProbeTable is the [service.probe] table of a server's wgbird.toml:
// the probe's key file and the anycast public key clients expect, so
// that a server whose key drifted fails the probe.
func ProbeTable(keyFile, serverPublicKey string) string {
	return fmt.Sprintf("\n[service.probe]\nprivate_key_file = %q\nserver_public_key = %q\n", keyFile, serverPublicKey)
}

// EnableProbe turns wgbird's active probe on for every server: a probe
// key per server, its [Peer] in the server's wg0.conf (applied with wg
// syncconf, so Heal keeps it), and wgbird restarted (SIGTERM: BIRD is left
// as it is) with a config that has [service.probe]. It is idempotent.
//
// The lab's own wgbird.toml and ensureWgbird know nothing of the probe: a
// wgbird that Heal or StartWgbird starts again runs without it.
func (l *Lab) EnableProbe(ctx context.Context) error {
	if l.cfg.Wgbird == "" {
		return errors.New("enabling the probe: the lab runs no wgbird")
	}
	for _, s := range Servers {
		if err := l.enableProbe(ctx, s.Name); err != nil {
			return fmt.Errorf("enabling the probe on %s: %w", s.Name, err)
		}
	}
	return nil
}

func (l *Lab) enableProbe(ctx context.Context, server string) error {
	keyFile := l.ProbeKeyFile(server)
	k, err := probe.LoadPrivateKey(keyFile)
	if errors.Is(err, os.ErrNotExist) {
		if _, err = probe.GenerateKey(keyFile, false); err == nil {
			k, err = probe.LoadPrivateKey(keyFile)
		}
	}
	if err != nil {
		return err
	}
	stanza := probe.Stanza(k.PublicKey())

	wgConf := l.path(server, "wg0.conf")
	b, err := os.ReadFile(wgConf)
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), "PublicKey = "+k.PublicKey().String()+"\n") {
		if err := os.WriteFile(wgConf, []byte(string(b)+"\n"+stanza), 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", wgConf, err)
		}
	}
	if err := l.ensureWireGuard(ctx, server); err != nil {
		return err
	}

	serverKey, err := probe.LoadPrivateKey(l.path(server, "private.key"))
	if err != nil {
		return fmt.Errorf("reading the server key: %w", err)
	}
	dir := strings.TrimSuffix(l.path(server, ""), "/")
	conf := l.ProbeWgbirdConf(server)
	text := WgbirdConf(dir, l.cfg.Thresholds) + ProbeTable(keyFile, serverKey.PublicKey().String())
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", conf, err)
	}
	return l.restartWgbird(ctx, server, conf)
}

// restartWgbird stops server's wgbird, if any, with SIGTERM (the lab's
// on_stop is keep: BIRD is left as it is) and starts it with conf.
func (l *Lab) restartWgbird(ctx context.Context, server, conf string) error {
	if pid := l.WgbirdPid(server); pid > 0 {
		if err := stopPid(ctx, pid, syscall.SIGTERM, 5*time.Second); err != nil {
			return err
		}
	}
	logFile := l.WgbirdLog(server)
	pid, err := startDaemon(daemon{
		ns:      l.NS(server),
		wgDir:   l.path(server, "wireguard"),
		argv:    []string{l.cfg.Wgbird, "run", "--config", conf},
		pidFile: l.path(server, "wgbird.pid"),
		logFile: logFile,
	})
	if err != nil {
		return err
	}
	err = poll(ctx, 5*time.Second, 20*time.Millisecond, "wgbird on "+server, func() (bool, error) {
		if !readProc(pid).Alive {
			return false, fmt.Errorf("wgbird exited: %s", tail(logFile, 5))
		}
		c, err := net.DialTimeout("unix", l.ControlSocket(server), time.Second)
		if err != nil {
			return false, nil
		}
		c.Close()
		return true, nil
	})
	if err != nil {
		if readProc(pid).Alive {
			l.log.Warn("wgbird runs but its control socket does not answer", "server", server, "err", err)
			return nil
		}
		return fmt.Errorf("starting wgbird on %s: %w", server, err)
	}
	l.log.Debug("wgbird started with the probe", "server", server, "pid", pid)
	return nil
}

// FailKeyRotate breaks server in KeyRotate mode and returns the instant
// just before the key changed, on this process's monotonic clock, as Fail
// does.
func (l *Lab) FailKeyRotate(ctx context.Context, server string) (time.Time, error) {
	if _, err := ServerByName(server); err != nil {
		return time.Time{}, err
	}
	rotated := l.path(server, "rotated.key")
	if _, err := probe.GenerateKey(rotated, true); err != nil {
		return time.Time{}, fmt.Errorf("failing %s (%s): %w", server, KeyRotate, err)
	}
	t0 := time.Now()
	if _, err := l.wg(ctx, server, "set", WGInterface, "private-key", rotated); err != nil {
		return t0, fmt.Errorf("failing %s (%s): %w", server, KeyRotate, err)
	}
	l.log.Info("fault injected", "server", server, "mode", KeyRotate)
	return t0, nil
}
