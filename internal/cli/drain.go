package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/wgbird/wgbird/internal/api"
	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/control"
	"github.com/wgbird/wgbird/internal/drain"
)

// ctlFlags are the flags of every command that talks to a running wgbird.
type ctlFlags struct {
	socket string
	config string
}

func (f *ctlFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.socket, "socket", "", "control socket `path` (default: control.socket of the config, else "+config.DefaultControlSocket+")")
	fs.StringVar(&f.config, "config", "", "config `file` to read control.socket from (default: "+DefaultConfig+" if it exists)")
}

// defaultConfigPath is where the control commands look for the socket's
// path when neither --socket nor --config is given; tests change it.
var defaultConfigPath = DefaultConfig

// socketPath returns the control socket: --socket, else the config's
// control.socket (--config, or the default config if it exists), else the
// default. A default config that cannot be loaded is warned about and
// skipped, so that a broken edit does not lock the operator out of a
// running daemon; an explicit --config must load.
func (f *ctlFlags) socketPath(env *Env) (string, error) {
	if f.socket != "" {
		return f.socket, nil
	}
	path := f.config
	if path == "" {
		if _, err := os.Stat(defaultConfigPath); errors.Is(err, fs.ErrNotExist) {
			return config.DefaultControlSocket, nil
		}
		path = defaultConfigPath
	}
	cfg, err := config.Load(path)
	if err != nil {
		if f.config != "" {
			return "", withCode(ExitConfig, err)
		}
		fmt.Fprintf(env.Stderr, "wgbird: warning: using %s: %v\n", config.DefaultControlSocket, err)
		return config.DefaultControlSocket, nil
	}
	return cfg.Control.Socket, nil
}

func (f *ctlFlags) client(env *Env) (*control.Client, error) {
	sock, err := f.socketPath(env)
	if err != nil {
		return nil, err
	}
	return control.NewClient(sock, 0), nil
}

// clientError gives a control client error its exit code.
func clientError(err error) error {
	var nr *control.NotRunningError
	var ae *control.APIError
	switch {
	case errors.As(err, &nr):
		return withCode(ExitNoService, err)
	case errors.As(err, &ae) && (ae.StatusCode == http.StatusBadRequest || ae.StatusCode == http.StatusNotFound):
		return withCode(ExitConfig, err)
	}
	return withCode(ExitFailure, err)
}

type drainOpts struct {
	ctl     ctlFlags
	reason  string
	persist bool
	wait    bool
	timeout time.Duration
}

type undrainOpts struct {
	ctl ctlFlags
}

func init() {
	register(&Command{
		Name:     "drain",
		Args:     "[SERVICE...]",
		Synopsis: "withdraw services whatever their health, until undrain",
		Help: `Asks the running wgbird to withdraw the named services (all when none are
named) at once, whatever their health, and to keep them withdrawn until
'wgbird undrain'. The drain is kept under control.runtime_dir, so it survives
a wgbird restart; with --persist also under control.state_dir, so it survives
a reboot. A drain that cannot be stored is not applied, and drain exits 1.

With --wait, drain returns only when BIRD reports the services' protocols
disabled and the WireGuard traffic on their interfaces has gone quiet: every
peer's received bytes unchanged for the service's quiet_period (default 10s),
which happens once clients have moved to another server. It prints progress
every second, and at --timeout exits 1 naming what is still active. Before a
remote reboot:

    wgbird drain --wait --reason "kernel update" && systemctl reboot

After the reboot a drain without --persist is gone, and the server is
announced again after rise healthy checks.

Exits 3 when no wgbird answers on the control socket, 2 for an unknown
service.`,
		Flags: func(fs *flag.FlagSet) any {
			o := &drainOpts{}
			o.ctl.register(fs)
			fs.StringVar(&o.reason, "reason", "", "why, shown by status (default \""+control.DefaultReason+"\")")
			fs.BoolVar(&o.persist, "persist", false, "keep the drain across reboots (control.state_dir)")
			fs.BoolVar(&o.wait, "wait", false, "wait until BIRD has withdrawn and WireGuard traffic has gone quiet")
			fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "with --wait: give up and exit 1 after this `duration`")
			return o
		},
		Run: func(ctx context.Context, env *Env, opts any, args []string) error {
			return runDrain(ctx, env, opts.(*drainOpts), args)
		},
	})
	register(&Command{
		Name:     "undrain",
		Args:     "[SERVICE...]",
		Synopsis: "end a drain: services are announced again once healthy",
		Help: `Removes the drain of the named services (all when none are named), from
memory and from disk. Each service is announced again after rise healthy
checks. Exits 3 when no wgbird answers on the control socket.`,
		Flags: func(fs *flag.FlagSet) any {
			o := &undrainOpts{}
			o.ctl.register(fs)
			return o
		},
		Run: func(ctx context.Context, env *Env, opts any, args []string) error {
			return runUndrain(ctx, env, opts.(*undrainOpts), args)
		},
	})
}

func runDrain(ctx context.Context, env *Env, o *drainOpts, args []string) error {
	if o.wait && o.timeout <= 0 {
		return withCode(ExitConfig, fmt.Errorf("--timeout must be positive"))
	}
	c, err := o.ctl.client(env)
	if err != nil {
		return err
	}
	defer c.Close()
	rep, err := c.Drain(ctx, api.DrainRequest{Services: args, Reason: o.reason, Persist: o.persist})
	if err != nil {
		return clientError(err)
	}
	kind := "kept across wgbird restarts, not reboots"
	if o.persist {
		kind = "persistent: kept across reboots"
	}
	reason := ""
	if rep.Drain != nil {
		reason = rep.Drain.Reason
	}
	fmt.Fprintf(env.Stdout, "drained %s until undrain (%s): %s\n", strings.Join(rep.Services, ", "), kind, reason)
	if !o.wait {
		return nil
	}
	return waitDrained(ctx, env.Stdout, c, rep.Services, o.timeout, time.Second)
}

func runUndrain(ctx context.Context, env *Env, o *undrainOpts, args []string) error {
	c, err := o.ctl.client(env)
	if err != nil {
		return err
	}
	defer c.Close()
	rep, err := c.Undrain(ctx, api.UndrainRequest{Services: args})
	if err != nil {
		return clientError(err)
	}
	fmt.Fprintf(env.Stdout, "undrained %s: announced again after rise healthy checks\n", strings.Join(rep.Services, ", "))
	return nil
}

// drainWatcher is what waitDrained reads from the daemon.
type drainWatcher interface {
	Status(ctx context.Context) (api.StatusReply, error)
	Peers(ctx context.Context, service string) (api.PeersReply, error)
}

var _ drainWatcher = (*control.Client)(nil)

// waitDrained polls every `every` until, for every service, BIRD reports
// its protocols disabled and its WireGuard peers' counters have not moved
// for its quiet period; it prints one progress line per service and poll.
// At timeout it fails with ExitFailure, naming what is still active.
func waitDrained(ctx context.Context, out io.Writer, c drainWatcher, services []string, timeout, every time.Duration) error {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	traffic := make(map[string]*drain.Traffic, len(services))
	birdLeft := make(map[string]string, len(services))    // "" = withdrawn
	trafficLeft := make(map[string]string, len(services)) // "" = quiet
	for _, s := range services {
		traffic[s] = drain.NewTraffic()
		birdLeft[s] = "BIRD state not read yet"
		trafficLeft[s] = "traffic not read yet"
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		st, err := c.Status(dctx)
		if err != nil {
			if dctx.Err() != nil {
				return waitEnded(ctx, timeout, services, birdLeft, trafficLeft)
			}
			var nr *control.NotRunningError
			if errors.As(err, &nr) {
				return clientError(fmt.Errorf("waiting for the drain: %w", err))
			}
			for _, s := range services {
				birdLeft[s] = "status unreadable: " + err.Error()
			}
		} else {
			for _, s := range services {
				left, err := drain.Withdrawn(st.Services, s)
				if err != nil {
					return withCode(ExitFailure, err)
				}
				birdLeft[s] = left
			}
		}
		for _, s := range services {
			pr, err := c.Peers(dctx, s)
			if err != nil {
				if dctx.Err() != nil {
					return waitEnded(ctx, timeout, services, birdLeft, trafficLeft)
				}
				trafficLeft[s] = "peers unreadable: " + err.Error()
				fmt.Fprintf(out, "%s: %s; %s\n", s, orDone(birdLeft[s], "BIRD withdrawn"), trafficLeft[s])
				continue
			}
			ts := traffic[s].Observe(pr)
			trafficLeft[s] = ""
			if !ts.Quiet {
				trafficLeft[s] = describeTraffic(ts)
			}
			fmt.Fprintf(out, "%s: %s; %s\n", s, orDone(birdLeft[s], "BIRD withdrawn"), orDone(trafficLeft[s], fmt.Sprintf("traffic quiet for %s (%s)", ts.QuietFor.Round(time.Second), peerCount(ts.Peers, ts.DeviceMissing))))
		}
		done := true
		for _, s := range services {
			done = done && birdLeft[s] == "" && trafficLeft[s] == ""
		}
		if done {
			fmt.Fprintf(out, "drained: BIRD has withdrawn %s and its WireGuard traffic has gone quiet\n", strings.Join(services, ", "))
			return nil
		}
		select {
		case <-dctx.Done():
			return waitEnded(ctx, timeout, services, birdLeft, trafficLeft)
		case <-tick.C:
		}
	}
}

// waitEnded is the error of a wait cut short by its timeout or by ctx.
func waitEnded(ctx context.Context, timeout time.Duration, services []string, birdLeft, trafficLeft map[string]string) error {
	var left []string
	for _, s := range services {
		for _, l := range []string{birdLeft[s], trafficLeft[s]} {
			if l != "" {
				left = append(left, s+": "+l)
			}
		}
	}
	what := strings.Join(left, "; ")
	if ctx.Err() != nil {
		return withCode(ExitFailure, fmt.Errorf("interrupted while waiting (the drain stays): still active: %s", what))
	}
	return withCode(ExitFailure, fmt.Errorf("timed out after %s waiting for the drain (it stays); still active: %s", timeout, what))
}

func describeTraffic(ts drain.TrafficState) string {
	var b strings.Builder
	fmt.Fprintf(&b, "traffic quiet for %s of %s", ts.QuietFor.Truncate(time.Second), ts.Period)
	if len(ts.Active) > 0 {
		fmt.Fprintf(&b, ", %d of %d peers active:", len(ts.Active), ts.Peers)
		for i, p := range ts.Active {
			if i == 5 {
				fmt.Fprintf(&b, " and %d more", len(ts.Active)-i)
				break
			}
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, " %s", shortKey(p.PublicKey))
			if p.Endpoint != "" {
				fmt.Fprintf(&b, " (%s)", p.Endpoint)
			}
			if p.Recent > 0 {
				fmt.Fprintf(&b, " %s in the last %s", formatBytes(p.Recent), ts.Window)
			} else {
				fmt.Fprintf(&b, " last moved %s ago", p.Idle.Round(time.Second))
			}
		}
	}
	return b.String()
}

func orDone(left, done string) string {
	if left == "" {
		return done
	}
	return left
}

func peerCount(n int, missing bool) string {
	switch {
	case missing:
		return "interface gone"
	case n == 1:
		return "1 peer"
	}
	return fmt.Sprintf("%d peers", n)
}

// shortKey abbreviates a base64 public key as wg(8) users recognise it.
func shortKey(k string) string {
	if len(k) <= 10 {
		return k
	}
	return k[:10] + "…"
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
