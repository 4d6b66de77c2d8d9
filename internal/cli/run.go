package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/wgbird/wgbird/internal/api"
	"github.com/wgbird/wgbird/internal/bird"
	"github.com/wgbird/wgbird/internal/birdlint"
	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/control"
	"github.com/wgbird/wgbird/internal/daemon"
	"github.com/wgbird/wgbird/internal/drain"
	"github.com/wgbird/wgbird/internal/execcheck"
	"github.com/wgbird/wgbird/internal/link"
	"github.com/wgbird/wgbird/internal/systemd"
	"github.com/wgbird/wgbird/internal/wireguard"
)

// DefaultConfig is where the config is read from unless --config says.
const DefaultConfig = "/etc/wgbird/wgbird.toml"

type runOpts struct {
	config string
	drain  bool
	reason string
	pprof  bool
}

func init() {
	register(&Command{
		Name:     "run",
		Synopsis: "run the daemon: watch WireGuard and links, enable or disable BIRD protocols",
		Help: `Reads the config, then for every service checks the WireGuard device (wgctrl),
the interface and its VIPs (netlink, with events) and any exec checks, and keeps the
service's BIRD protocols enabled while healthy and disabled otherwise. Runs until
SIGTERM or SIGINT. Exits 2 on a configuration error, including a protocol BIRD does
not know.`,
		Flags: func(fs *flag.FlagSet) any {
			o := &runOpts{}
			fs.StringVar(&o.config, "config", DefaultConfig, "config file `path`")
			fs.BoolVar(&o.drain, "drain", false, "start drained: withdraw every service until 'wgbird undrain'")
			fs.StringVar(&o.reason, "reason", "started with --drain", "drain reason shown by status, with --drain")
			fs.BoolVar(&o.pprof, "pprof", false, "serve Go's runtime profiles at /debug/pprof/ on the control socket, for finding what grows (memory profiling, off otherwise, from then on)")
			return o
		},
		Run: func(ctx context.Context, env *Env, opts any, _ []string) error {
			return run(ctx, env, opts.(*runOpts))
		},
	})
}

// newLogger logs key=value to stderr, without timestamps when journald
// (which stamps every line itself) is the sink.
func newLogger(env *Env) *slog.Logger {
	journald := env.Getenv != nil && env.Getenv("JOURNAL_STREAM") != ""
	return slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if journald && len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// GodebugSets reports whether godebug, a GODEBUG value (comma-separated
// key=value settings), sets key: an operator's memprofilerate there wins
// over wgbird's own choice (see cmd/wgbird and --pprof).
func GodebugSets(godebug, key string) bool {
	for _, kv := range strings.Split(godebug, ",") {
		if k, _, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && k == key {
			return true
		}
	}
	return false
}

func run(ctx context.Context, env *Env, o *runOpts) error {
	if o.pprof && (env.Getenv == nil || !GodebugSets(env.Getenv("GODEBUG"), "memprofilerate")) {
		// cmd/wgbird turns memory profiling off; --pprof wants it.
		runtime.MemProfileRate = 512 << 10
	}
	cfg, err := config.Load(o.config)
	if err != nil {
		return withCode(ExitConfig, err)
	}
	log := newLogger(env)
	// Configuration only the system can judge, before anything listens.
	if ok, err := control.GroupExists(cfg.Control.Group); !ok {
		if errors.Is(err, control.ErrUnknownGroup) {
			return withCode(ExitConfig, config.ErrorAt(o.config, "control.group",
				fmt.Sprintf("%q: no such group (create it: groupadd --system %s; or set group = \"\" to keep root's group)", cfg.Control.Group, cfg.Control.Group)))
		}
		return err
	}

	bc := bird.NewClient(cfg.BIRD.Socket, bird.Options{Timeout: cfg.BIRD.Timeout})
	defer bc.Close()
	if err := checkProtocols(ctx, bc, cfg, o.config); err != nil {
		return withCode(ExitConfig, err)
	}
	wg, err := wireguard.NewReader()
	if err != nil {
		return fmt.Errorf("opening wgctrl: %w", err)
	}
	defer wg.Close()

	// A second instance stops here, before it takes the metrics port, and
	// says which socket the first one holds.
	if err := control.Running(cfg.Control.Socket); err != nil {
		return err
	}
	// Metrics ([metrics] listen) and the transition hook ([hook] command).
	birdc, observer, stopObservers, err := startObservers(cfg, log, bc)
	if err != nil {
		return err
	}
	defer stopObservers()

	// Client continuity: VIP-sourced WireGuard traffic, the group and
	// session takeovers (issue 13). It is removed on exit unless systemd
	// is restarting wgbird.
	cont, startCont, stopCont, err := newContinuity(cfg, wg, observer, log)
	if err != nil {
		return err
	}
	removeOnExit := true
	defer func() { stopCont(removeOnExit) }()
	// The reload watcher's own connection, a sibling of bc, so a hung
	// BIRD still costs one connection attempt in flight, not one each.
	watch := bc.Sibling(0)
	defer watch.Close()
	links := &link.Reader{}
	defer links.Close()
	deps := daemon.Deps{
		BIRD:       birdc,
		BIRDStatus: watch,
		BIRDReloads: func(ctx context.Context) (daemon.ReloadSigns, error) {
			return bird.WatchReloads(ctx, cfg.BIRD.Socket, locateBIRDConfig(cfg.BIRD.Socket, log))
		},
		WireGuard: wg,
		Exec:      execcheck.Run,
		NewProber: newProber,
		Links:     links,
		Subscribe: link.Subscribe,
		Log:       log,
		Observer:  observer,
	}
	if cont != nil {
		deps.Observer = append(observers{cont}, asList(observer)...)
		deps.Continuity = cont
	}
	d, err := daemon.New(cfg, deps)
	if err != nil {
		// A probe key file missing or readable by others.
		return withCode(ExitConfig, err)
	}
	if o.drain {
		if err := d.SetDrain(nil, &api.Drain{Reason: o.reason, Since: time.Now()}); err != nil {
			return err
		}
	}
	// --- control socket and stored drains (issue 4) ---
	// Drains an operator stored are applied before the first check, so a
	// restart never announces a drained service in between; for their
	// services they replace --drain's reason.
	store := drain.NewStore(cfg.Control.RuntimeDir, cfg.Control.StateDir)
	if err := drain.Restore(d, store, log); err != nil {
		return err
	}
	srv, err := control.Start(control.Options{Socket: cfg.Control.Socket, Group: cfg.Control.Group, Version: Version, Log: log, Pprof: o.pprof}, d, store)
	if errors.Is(err, control.ErrUnknownGroup) {
		return withCode(ExitConfig, err)
	}
	if err != nil {
		return err
	}
	defer srv.Close() // bounded: returns within a few seconds
	// --- end of control ---
	log.Info("starting", "version", Version, "config", o.config, "services", d.Services(), "bird_socket", cfg.BIRD.Socket)

	wctx, stopWatchdog := context.WithCancel(ctx)
	defer stopWatchdog()
	go func() {
		if err := systemd.Watchdog(wctx, d.Alive); err != nil {
			log.Error("systemd watchdog", "err", err)
		}
	}()

	startCont(ctx)
	err = d.Run(ctx, func() {
		log.Info("ready: first check and reconcile done")
		if err := systemd.Ready(); err != nil {
			log.Error("notifying systemd", "err", err)
		}
	})
	var upe *daemon.UnknownProtocolError
	if errors.As(err, &upe) {
		// BIRD answered only after start-up, or its config changed.
		return withCode(ExitConfig, protocolError(cfg, o.config, upe.Service, upe.Protocol))
	}
	if err != nil {
		return err
	}
	_ = systemd.Stopping()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Shutdown.Delay+cfg.BIRD.Timeout*2)
	defer cancel()
	stopping := systemd.SystemStopping(sctx)
	removeOnExit = stopping || !systemd.Restarting(sctx)
	return d.Stop(sctx, stopping)
}

// checkProtocols fails with a located configuration error when BIRD
// answers and lacks a configured protocol. A BIRD that does not answer now
// is a health state, not a configuration error: the daemon logs it and
// checks again when BIRD answers.
func checkProtocols(ctx context.Context, bc *bird.Client, cfg *config.Config, path string) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.BIRD.Timeout)
	defer cancel()
	ps, err := bc.Protocols(ctx)
	if err != nil {
		return nil
	}
	known := make(map[string]bool, len(ps))
	for _, p := range ps {
		known[p.Name] = true
	}
	for _, s := range cfg.Services {
		for _, p := range s.Protocols {
			if !known[p] {
				return protocolError(cfg, path, s.Name, p)
			}
		}
	}
	return nil
}

// protocolError locates a protocol BIRD does not know at its entry in the
// service's protocols key.
func protocolError(cfg *config.Config, path, service, protocol string) error {
	key := "service"
	for i, s := range cfg.Services {
		if s.Name != service {
			continue
		}
		key = fmt.Sprintf("service[%d].protocols", i+1)
		if j := slices.Index(s.Protocols, protocol); j >= 0 {
			key = fmt.Sprintf("%s[%d]", key, j+1)
		}
	}
	return config.ErrorAt(path, key, fmt.Sprintf("service %q: BIRD has no protocol %q (check this name and bird.conf)", service, protocol))
}

// locateBIRDConfig finds, for the reload watcher, the config file of the
// BIRD answering on socket, as `wgbird check` does (birdlint.Locate).
// When BIRD answers but its process is out of sight (the packaged unit's
// ProtectProc=invisible hides other users' processes), it takes the
// first default config that exists, logged; a BIRD that does not answer
// is an error, so that a BIRD still starting is asked again.
func locateBIRDConfig(socket string, log *slog.Logger) bird.Locate {
	return func(context.Context) (string, error) {
		loc, err := birdlint.Locate(socket, time.Second)
		if err == nil {
			return loc.Watched()
		}
		if op := (*net.OpError)(nil); errors.As(err, &op) {
			return "", err // BIRD not answering
		}
		conf, derr := birdlint.DefaultConfig()
		if derr != nil {
			return "", fmt.Errorf("%w; and %w", err, derr)
		}
		log.Info("BIRD's process out of sight: watching the default config file for reloads", "file", conf, "reason", err)
		return conf, nil
	}
}
