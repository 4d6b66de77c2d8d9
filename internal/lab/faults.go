package lab

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/wgbird/wgbird/internal/labproc"
)

// Mode is a way to break a server.
type Mode string

// The fault modes. Each breaks one thing an operator has seen break.
const (
	Kill          Mode = "kill"           // SIGKILL wireguard-go: its TUN vanishes
	Hang          Mode = "hang"           // SIGSTOP wireguard-go: UAPI accepts, never answers
	LinkDelete    Mode = "link-delete"    // ip link del wg0 (wireguard-go exits)
	LinkDown      Mode = "link-down"      // ip link set wg0 down
	VIPRemove     Mode = "vip-remove"     // ip addr del VIP dev wg0
	KeyRemove     Mode = "key-remove"     // wg set wg0 private-key /dev/null
	PortChange    Mode = "port-change"    // wg set wg0 listen-port 51821
	PeersRemove   Mode = "peers-remove"   // wg set wg0 peer ... remove, every peer
	KeyRotate     Mode = "key-rotate"     // wg set wg0 private-key <another key>
	BirdRestart   Mode = "bird-restart"   // restart BIRD (static protocol starts disabled)
	BirdConfigure Mode = "bird-configure" // birdc configure (BIRD forgets CLI enable)
	Drain         Mode = "drain"          // wgbird drain
)

// ModeInfo describes a mode for --help and tests.
type ModeInfo struct {
	Mode Mode
	Help string
	// SelfHealing modes leave WireGuard healthy: wgbird's reconcile loop
	// re-enables the protocol without a heal and without waiting for rise.
	SelfHealing bool
	// NeedsWgbird modes talk to wgbird.
	NeedsWgbird bool
	// NeedsProbe modes are caught by wgbird's active probe only: every
	// passive check stays green (see Config.NoProbe).
	NeedsProbe bool
}

// Modes lists every mode, in the order tests and --help use.
var Modes = []ModeInfo{
	{Mode: Kill, Help: "SIGKILL wireguard-go (its TUN and wg0 vanish, a stale UAPI socket stays)"},
	{Mode: Hang, Help: "SIGSTOP wireguard-go (its UAPI socket accepts and never answers)"},
	{Mode: LinkDelete, Help: "delete wg0 (wireguard-go exits)"},
	{Mode: LinkDown, Help: "set wg0 administratively down"},
	{Mode: VIPRemove, Help: "remove the VIP " + VIP.String() + " from wg0"},
	{Mode: KeyRemove, Help: "remove wg0's private key"},
	{Mode: PortChange, Help: fmt.Sprintf("change wg0's listen port to %d", ListenPort+1)},
	{Mode: PeersRemove, Help: "remove every peer of wg0"},
	// KeyRotate: one anycast server reloaded or restarted with a rotated
	// key the others (and the clients) do not have. wg0 keeps a key, its
	// port and its peers, so every passive check stays green while clients
	// routed to it can no longer handshake. The key is set in place, which
	// is where a restart with the wrong key ends up, without the restart's
	// link flap that the link check would catch on its own.
	{Mode: KeyRotate, Help: "replace wg0's private key with another one (anycast key drift after a rotation; only the active probe catches it)", NeedsProbe: true},
	{Mode: BirdRestart, Help: "restart BIRD (SIGTERM, start again: the static protocol starts disabled)", SelfHealing: true},
	{Mode: BirdConfigure, Help: "run `birdc configure` (BIRD forgets the CLI enable)", SelfHealing: true},
	{Mode: Drain, Help: "drain the server through wgbird's control socket", NeedsWgbird: true},
}

// ParseMode returns the mode called s.
func ParseMode(s string) (ModeInfo, error) {
	for _, m := range Modes {
		if string(m.Mode) == s {
			return m, nil
		}
	}
	names := make([]string, len(Modes))
	for i, m := range Modes {
		names[i] = string(m.Mode)
	}
	return ModeInfo{}, fmt.Errorf("unknown mode %q (want one of %s)", s, strings.Join(names, ", "))
}

// Fail breaks server in the given mode and returns when the fault was
// injected: the instant just before the breaking action, on this process's
// monotonic clock (compare it with Watcher changes).
func (l *Lab) Fail(ctx context.Context, server string, mode Mode) (time.Time, error) {
	if _, err := ServerByName(server); err != nil {
		return time.Time{}, err
	}
	info, err := ParseMode(string(mode))
	if err != nil {
		return time.Time{}, err
	}
	if info.NeedsWgbird && l.cfg.Wgbird == "" {
		return time.Time{}, fmt.Errorf("mode %s needs wgbird, and the lab runs none", mode)
	}
	if l.cfg.KernelWireGuard && (mode == Kill || mode == Hang) {
		return time.Time{}, fmt.Errorf("mode %s acts on wireguard-go, and the lab runs kernel WireGuard", mode)
	}
	ns := l.NS(server)
	wgPid := func() (int, error) {
		pid := l.WireGuardGoPid(server)
		if pid == 0 {
			return 0, fmt.Errorf("wireguard-go is not running on %s", server)
		}
		return pid, nil
	}
	var t0 time.Time
	switch mode {
	case Kill:
		pid, err := wgPid()
		if err != nil {
			return t0, err
		}
		t0 = time.Now()
		if err := labproc.StopPid(ctx, pid, syscall.SIGKILL, 0); err != nil {
			return t0, err
		}
	case Hang:
		pid, err := wgPid()
		if err != nil {
			return t0, err
		}
		t0 = time.Now()
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			return t0, fmt.Errorf("stopping wireguard-go: %w", err)
		}
	case LinkDelete:
		t0 = time.Now()
		_, err = labproc.Run(ctx, "ip", "-n", ns, "link", "del", WGInterface)
	case LinkDown:
		t0 = time.Now()
		_, err = labproc.Run(ctx, "ip", "-n", ns, "link", "set", WGInterface, "down")
	case VIPRemove:
		t0 = time.Now()
		_, err = labproc.Run(ctx, "ip", "-n", ns, "addr", "del", VIP.String(), "dev", WGInterface)
	case KeyRemove:
		t0 = time.Now()
		_, err = l.wg(ctx, server, "set", WGInterface, "private-key", "/dev/null")
	case PortChange:
		t0 = time.Now()
		_, err = l.wg(ctx, server, "set", WGInterface, "listen-port", fmt.Sprint(ListenPort+1))
	case PeersRemove:
		out, err := l.wg(ctx, server, "show", WGInterface, "peers")
		if err != nil {
			return t0, err
		}
		peers := strings.Fields(out)
		if len(peers) == 0 {
			return t0, fmt.Errorf("%s has no peers to remove", server)
		}
		args := []string{"set", WGInterface}
		for _, p := range peers {
			args = append(args, "peer", p, "remove")
		}
		t0 = time.Now()
		_, err = l.wg(ctx, server, args...)
		if err != nil {
			return t0, err
		}
	case KeyRotate:
		t0, err = l.rotateKey(ctx, server)
	case BirdRestart:
		t0 = time.Now()
		if err := l.stopBird(ctx, server); err != nil {
			return t0, err
		}
		err = l.startBird(ctx, server)
	case BirdConfigure:
		t0 = time.Now()
		var out string
		out, err = l.birdc(ctx, server, "configure")
		if err == nil && !strings.Contains(out, "Reconfigured") && !strings.Contains(out, "Reconfiguration in progress") {
			err = fmt.Errorf("birdc configure: %s", strings.TrimSpace(out))
		}
	case Drain:
		t0 = time.Now()
		err = l.Drain(ctx, server, "wgbird-lab fail drain")
	}
	if err != nil {
		return t0, fmt.Errorf("failing %s (%s): %w", server, mode, err)
	}
	l.log.Info("fault injected", "server", server, "mode", mode)
	return t0, nil
}

// Heal restores server fully, whatever was done to it and idempotently:
// BIRD running, wireguard-go running (continued or restarted), wg0 with its
// key, port, peers, addresses and up, wgbird running and undrained.
func (l *Lab) Heal(ctx context.Context, server string) error {
	if _, err := ServerByName(server); err != nil {
		return err
	}
	var errs []error
	if err := l.startBird(ctx, server); err != nil {
		errs = append(errs, err)
	}
	if err := l.ensureWireGuard(ctx, server); err != nil {
		errs = append(errs, err)
	}
	if l.cfg.Wgbird != "" {
		if err := l.ensureWgbird(ctx, server); err != nil {
			errs = append(errs, err)
		} else if err := l.Undrain(ctx, server); err != nil {
			errs = append(errs, fmt.Errorf("undraining %s: %w", server, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("healing %s: %w", server, err)
	}
	l.log.Info("healed", "server", server)
	return nil
}
