package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/wgbird/wgbird/internal/api"
	"github.com/wgbird/wgbird/internal/bird"
	"github.com/wgbird/wgbird/internal/birdlint"
	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/continuity"
	"github.com/wgbird/wgbird/internal/control"
	"github.com/wgbird/wgbird/internal/daemon"
	"github.com/wgbird/wgbird/internal/execcheck"
	"github.com/wgbird/wgbird/internal/statusview"
	"github.com/wgbird/wgbird/internal/vipsrc"
	"github.com/wgbird/wgbird/internal/wireguard"
)

type checkOpts struct {
	config     string
	birdConfig string
}

func init() {
	register(&Command{
		Name:     "check",
		Synopsis: "evaluate every check once and print the status table; changes nothing in BIRD",
		Help: `Reads the config, evaluates every service's checks once and reads BIRD's
protocols, then prints the table 'wgbird status' prints, with warnings about BIRD
set-ups that defeat failover: a controlled protocol that is not disabled in BIRD's
config (it announces when BIRD starts, before wgbird has checked anything), a
controlled protocol whose routes no BGP protocol exports, and a BGP protocol
controlled instead of a static one. BIRD's config is found from the process behind
bird.socket; --bird-config names it instead. Only reads: nothing is enabled or
disabled. Usable as ExecStartPre. Exits 0 when every service is healthy, 1 when one
is not, 2 on a configuration error (including a protocol BIRD does not know).`,
		Flags: func(fs *flag.FlagSet) any {
			o := &checkOpts{}
			fs.StringVar(&o.config, "config", DefaultConfig, "config file `path`")
			fs.StringVar(&o.birdConfig, "bird-config", "", "BIRD's config `file` (default: found from the BIRD process behind bird.socket)")
			return o
		},
		Run: func(ctx context.Context, env *Env, opts any, _ []string) error {
			return runCheck(ctx, env, opts.(*checkOpts))
		},
	})
}

// checkBIRD is what check needs of BIRD: the daemon's reads, plus any
// read-only command and the version.
type checkBIRD interface {
	daemon.BIRD
	Query(ctx context.Context, cmd string) (bird.Reply, error)
	Status(ctx context.Context) (string, error)
}

var _ checkBIRD = (*bird.Client)(nil)

// checkDeps are check's seams; tests pass fakes.
type checkDeps struct {
	BIRD   checkBIRD
	Daemon daemon.Deps // BIRD is set by check, read-only
	// BIRDConf reads BIRD's config; an error is reported as a note.
	BIRDConf func() (*birdlint.Conf, error)
	Now      func() time.Time
	// VIPSource inspects a service's VIP-sourcing without changing it;
	// nil skips it.
	VIPSource func(continuity.Config) (vipsrc.State, error)
	// Running reports whether a wgbird daemon answers on the control
	// socket: only then is VIP-sourcing expected in place.
	Running func() bool
}

func runCheck(ctx context.Context, env *Env, o *checkOpts) error {
	cfg, err := config.Load(o.config)
	if err != nil {
		return withCode(ExitConfig, err)
	}
	bc := bird.NewClient(cfg.BIRD.Socket, bird.Options{Timeout: cfg.BIRD.Timeout})
	defer bc.Close()
	wg, err := wireguard.NewReader()
	if err != nil {
		return fmt.Errorf("opening wgctrl: %w", err)
	}
	defer wg.Close()
	deps := checkDeps{
		BIRD: bc,
		Daemon: daemon.Deps{
			WireGuard: wg,
			Exec:      execcheck.Run,
			NewProber: newProber,
			Log:       slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		},
		BIRDConf: func() (*birdlint.Conf, error) { return readBIRDConf(cfg.BIRD.Socket, cfg.BIRD.Timeout, o.birdConfig) },
		Now:      time.Now,
		Running:  func() bool { return control.Running(cfg.Control.Socket) != nil },
		VIPSource: func(c continuity.Config) (vipsrc.State, error) {
			return vipsrc.Inspect(&netlink.Handle{}, vipsrc.Config{Port: c.ListenPort, VIP4: c.VIP4, VIP6: c.VIP6, Table: c.Table, Priority: c.Priority})
		},
	}
	return check(ctx, env.Stdout, cfg, deps)
}

// readBIRDConf reads the config file given, or else the one the BIRD
// behind socket was started with.
func readBIRDConf(socket string, timeout time.Duration, given string) (*birdlint.Conf, error) {
	if given != "" {
		abs, err := filepath.Abs(given)
		if err != nil {
			return nil, err
		}
		read, glob := birdlint.FileSystem("/")
		return birdlint.ReadConf(abs, read, glob)
	}
	loc, err := birdlint.Locate(socket, timeout)
	if err != nil {
		return nil, err
	}
	read, glob := birdlint.FileSystem(loc.Root)
	return birdlint.ReadConf(loc.Path, read, glob)
}

// check evaluates once, prints the table and returns the exit status:
// nil when every service is healthy.
func check(ctx context.Context, w io.Writer, cfg *config.Config, deps checkDeps) error {
	dd := deps.Daemon
	dd.BIRD = readOnlyBIRD{deps.BIRD}
	d, err := daemon.New(cfg, dd)
	if err != nil {
		// A probe key file missing or readable by others.
		return withCode(ExitConfig, err)
	}

	view := statusview.View{Version: Version}
	view.Services = d.CheckOnce(ctx)
	bs := d.BIRDStatus()
	view.BIRD = &bs

	var lintErrs []string
	if view.BIRD.Reachable {
		rep := lintBIRD(ctx, cfg, deps)
		view.Warnings, view.Notes, lintErrs = rep.Warnings, rep.Notes, rep.Errors
	} else {
		view.Notes = append(view.Notes, "BIRD's set-up: BIRD is not reachable")
	}
	if deps.VIPSource != nil {
		running := deps.Running != nil && deps.Running()
		warns := checkVIPSource(cfg, view.Services, deps.VIPSource, running)
		if running {
			view.Warnings = append(view.Warnings, warns...)
		} else {
			view.Notes = append(view.Notes, warns...)
		}
	}
	view.Now = deps.Now()
	if err := statusview.Render(w, view); err != nil {
		return err
	}

	if len(lintErrs) > 0 {
		return withCode(ExitConfig, errors.New(strings.Join(lintErrs, "; ")))
	}
	var unhealthy []string
	for _, s := range view.Services {
		if !s.Healthy {
			unhealthy = append(unhealthy, s.Name)
		}
	}
	if len(unhealthy) > 0 {
		return withCode(ExitFailure, fmt.Errorf("unhealthy: %s", strings.Join(unhealthy, ", ")))
	}
	return nil
}

// lintBIRD reads what birdlint needs from BIRD, read-only commands only.
func lintBIRD(ctx context.Context, cfg *config.Config, deps checkDeps) birdlint.Report {
	var notes []string
	r, err := deps.BIRD.Query(ctx, "show protocols all")
	var protos []birdlint.Detail
	if err == nil {
		protos, err = birdlint.ParseProtocolsAll(r)
	}
	if err != nil {
		return birdlint.Report{Notes: []string{fmt.Sprintf("BIRD's set-up: reading show protocols all: %v", err)}}
	}
	var svcs []birdlint.Service
	for _, s := range cfg.Services {
		svcs = append(svcs, birdlint.Service{Name: s.Name, Protocols: s.Protocols})
	}
	exports := map[birdlint.ExportQuery]int{}
	for _, q := range birdlint.ExportQueries(svcs, protos) {
		r, err := deps.BIRD.Query(ctx, q.Command())
		var n int
		if err == nil {
			n, err = birdlint.ParseRouteCount(r)
		}
		if err != nil {
			notes = append(notes, fmt.Sprintf("`%s`: %v", q.Command(), err))
			continue
		}
		exports[q] = n
	}
	in := birdlint.Input{Services: svcs, Protocols: protos, Exports: exports}
	if deps.BIRDConf != nil {
		in.Conf, in.ConfErr = deps.BIRDConf()
	}
	rep := birdlint.Lint(in)
	rep.Notes = append(rep.Notes, notes...)
	return rep
}

// readOnlyBIRD refuses every change: check must leave BIRD as it is.
type readOnlyBIRD struct{ daemon.BIRD }

func (readOnlyBIRD) Enable(_ context.Context, name string) error {
	return fmt.Errorf("wgbird check changes nothing in BIRD: not enabling %q", name)
}

func (readOnlyBIRD) Disable(_ context.Context, name string) error {
	return fmt.Errorf("wgbird check changes nothing in BIRD: not disabling %q", name)
}

// checkVIPSource fills each service's VIP-sourcing line and warns where
// WireGuard's packets would not leave from the VIP. It changes nothing:
// `wgbird run` puts the set-up in place, so without a running wgbird the
// warning is expected.
func checkVIPSource(cfg *config.Config, svcs []api.ServiceStatus, inspect func(continuity.Config) (vipsrc.State, error), running bool) []string {
	cfgs, err := continuityConfigs(cfg)
	if err != nil {
		return []string{err.Error()}
	}
	var warns []string
	if msg := kernelTooOld(); msg != "" {
		warns = append(warns, msg)
	}
	for _, c := range cfgs {
		if !c.VIPSource {
			continue
		}
		if c.ListenPort == 0 {
			// The device's port, as the daemon would take it.
			for _, s := range svcs {
				if s.Name == c.Service {
					c.ListenPort = listenPortOf(s)
				}
			}
		}
		st, err := inspect(c)
		for i := range svcs {
			if svcs[i].Name == c.Service {
				svcs[i].Continuity = &api.Continuity{VIPSource: &api.VIPSource{InPlace: st.InPlace(), Detail: st.Detail()}}
			}
		}
		switch {
		case (err != nil || !st.InPlace()) && running:
			warns = append(warns, fmt.Sprintf("service %q: WireGuard's packets would not all leave from the VIP although wgbird runs: %s", c.Service, st.Detail()))
		case err != nil || !st.InPlace():
			warns = append(warns, fmt.Sprintf("service %q: VIP-sourcing is not in place (no wgbird runs; `wgbird run` puts it in place): %s", c.Service, st.Detail()))
		}
	}
	return warns
}

// listenPortOf reads the port from the wireguard check's detail
// ("listen 51820, ...").
func listenPortOf(s api.ServiceStatus) int {
	for _, c := range s.Checks {
		var port int
		if c.Name == "wireguard" {
			if _, err := fmt.Sscanf(c.Detail, "listen %d", &port); err == nil {
				return port
			}
		}
	}
	return 0
}

// kernelTooOld warns on a kernel before 4.17, whose policy rules cannot
// match the UDP source port.
func kernelTooOld() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	rel := unix.ByteSliceToString(u.Release[:])
	var major, minor int
	if _, err := fmt.Sscanf(rel, "%d.%d", &major, &minor); err != nil {
		return ""
	}
	if major < 4 || major == 4 && minor < 17 {
		return fmt.Sprintf("kernel %s: VIP-sourced WireGuard traffic needs policy rules on the UDP source port (Linux 4.17 or newer); clients may follow a takeover off the VIP", rel)
	}
	return ""
}
