package cli

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/wgctrl"

	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/continuity"
	"github.com/wgbird/wgbird/internal/daemon"
	"github.com/wgbird/wgbird/internal/metrics"
	"github.com/wgbird/wgbird/internal/vipsrc"
)

// continuityConfigs maps the services' configuration to continuity's,
// reading the group secrets.
func continuityConfigs(cfg *config.Config) ([]continuity.Config, error) {
	var out []continuity.Config
	for i, s := range cfg.Services {
		c := continuity.Config{
			Service: s.Name, Interface: s.Interface, ListenPort: s.ListenPort,
			VIPSource: s.VIPSource, Takeover: s.Takeover,
			Priority: vipsrc.DefaultPriority,
			Group:    s.Group, GroupPort: s.GroupPort,
		}
		if s.GroupSecretFile != "" {
			b, err := readSecret(s.GroupSecretFile)
			if err != nil {
				return nil, fmt.Errorf("service %q: group_secret_file: %w", s.Name, err)
			}
			c.Secret = b
		}
		c.Table = vipSourceTable(s, i)
		for _, p := range s.VIPs {
			a := p.Addr()
			switch {
			case a.Is4() && !c.VIP4.IsValid():
				c.VIP4 = a
			case a.Is6() && !a.Is4In6() && !c.VIP6.IsValid():
				c.VIP6 = a
			}
		}
		if c.VIPSource || c.Takeover {
			out = append(out, c)
		}
	}
	return out, nil
}

// readSecret reads a group secret: a private file (not readable by group
// or others) of at least 16 bytes, trailing whitespace ignored.
func readSecret(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by group or others (mode %04o): chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimRight(b, " \t\r\n")
	if len(b) < 16 {
		return nil, fmt.Errorf("%s holds %d bytes, want at least 16 (such as the output of `wg genpsk`)", path, len(b))
	}
	return b, nil
}

// newContinuity prepares client continuity for the services that have
// it: the manager to observe the daemon with and to ask for status (nil
// when no service has it). It reads devices through wg, the daemon's
// Reader, so a hung device holds one UAPI connection, not two. start runs it; stop ends it and removes the
// VIP-sourcing when remove is set (not when wgbird is restarting). Neither
// does anything when start was never called.
func newContinuity(cfg *config.Config, wg continuity.DeviceReader, obs daemon.Observer, log *slog.Logger) (m *continuity.Manager, start func(context.Context), stop func(remove bool), err error) {
	noop := func(bool) {}
	cfgs, err := continuityConfigs(cfg)
	if err != nil {
		return nil, nil, nil, withCode(ExitConfig, err)
	}
	removeLeftVIPSourcing(cfg, log)
	if len(cfgs) == 0 {
		return nil, func(context.Context) {}, noop, nil
	}
	wc, err := wgctrl.New()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("opening wgctrl: %w", err)
	}
	var rec continuity.Recorder
	for _, o := range asList(obs) {
		if mm, ok := o.(*metrics.Metrics); ok {
			rec = mm
		}
	}
	m = continuity.New(cfgs, wc, wg, rec, log)
	var cancel context.CancelFunc
	done := make(chan struct{})
	start = func(ctx context.Context) {
		ctx, cancel = context.WithCancel(ctx)
		go func() { defer close(done); m.Run(ctx) }()
	}
	stop = func(remove bool) {
		defer wc.Close()
		if cancel == nil {
			return
		}
		cancel()
		<-done
		if !remove {
			log.Info("restarting: VIP-sourcing left in place for the next wgbird")
			return
		}
		if err := m.Remove(); err != nil {
			log.Error("removing VIP-sourcing", "err", err)
		}
	}
	return m, start, stop, nil
}

// removeLeftVIPSourcing removes the VIP-sourcing rule and mirrored routes
// that a wgbird before a restart left in place for a service that now has
// vip_source = false, so turning the key off never leaves them behind.
// Only wgbird's own rule (its priority and table) and routes (its
// protocol) are touched; nothing there is not an error.
func removeLeftVIPSourcing(cfg *config.Config, log *slog.Logger) {
	for i, s := range cfg.Services {
		if s.VIPSource {
			continue
		}
		vc := vipsrc.Config{Port: s.ListenPort, Table: vipSourceTable(s, i), Priority: vipsrc.DefaultPriority}
		if err := vipsrc.Remove(&netlink.Handle{}, vc); err != nil {
			log.Warn("removing VIP-sourcing left by an earlier wgbird", "service", s.Name, "err", err)
		}
	}
}

// vipSourceTable is the routing table of the i-th service's VIP-sourcing:
// vip_source_table, or one of its own after vipsrc.DefaultTable.
func vipSourceTable(s config.Service, i int) int {
	if s.VIPSourceTable != 0 {
		return s.VIPSourceTable
	}
	return vipsrc.DefaultTable + i
}
