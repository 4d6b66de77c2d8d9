package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/wgbird/wgbird/internal/api"
	"github.com/wgbird/wgbird/internal/statusview"
)

type statusOpts struct {
	ctl   ctlFlags
	json  bool
	watch bool
}

func init() {
	register(&Command{
		Name:     "status",
		Synopsis: "show each service's state, checks, BIRD protocols and drain",
		Help: `Asks the running wgbird for each service's state (announced or withdrawn,
since when and why), its latest checks, its BIRD protocols and its drain (since
when, why, and whether it survives a reboot). --json prints the control API's
answer as is. --watch redraws the table every second until Ctrl-C. Exits 3
when no wgbird answers on the control socket.`,
		Flags: func(fs *flag.FlagSet) any {
			o := &statusOpts{}
			o.ctl.register(fs)
			fs.BoolVar(&o.json, "json", false, "print JSON")
			fs.BoolVar(&o.watch, "watch", false, "redraw every second until interrupted")
			return o
		},
		Run: func(ctx context.Context, env *Env, opts any, _ []string) error {
			return runStatus(ctx, env, opts.(*statusOpts))
		},
	})
}

func runStatus(ctx context.Context, env *Env, o *statusOpts) error {
	if o.watch && o.json {
		return withCode(ExitConfig, errors.New("--watch and --json exclude each other"))
	}
	c, err := o.ctl.client(env)
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil {
		return clientError(err)
	}
	if o.json {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	if o.watch {
		return watchStatus(ctx, env.Stdout, c, st, time.Second)
	}
	return statusview.Render(env.Stdout, statusView(st, time.Now()))
}

// statusView is the table of a status reply.
func statusView(st api.StatusReply, now time.Time) statusview.View {
	v := statusview.View{Version: st.Version, Services: st.Services, Now: now}
	if b := st.BIRD; b != nil && !b.CheckedAt.IsZero() {
		v.BIRD = b
	}
	return v
}

// clearScreen moves the cursor home and clears the terminal (ANSI).
const clearScreen = "\x1b[H\x1b[2J"

// watchStatus redraws the table every interval until ctx ends (Ctrl-C).
// A daemon that stops answering is shown, not fatal: it may be
// restarting.
func watchStatus(ctx context.Context, w io.Writer, c interface {
	Status(context.Context) (api.StatusReply, error)
}, st api.StatusReply, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	var err error
	for {
		now := time.Now()
		frame := clearScreen
		if err == nil {
			frame += statusView(st, now).String()
		} else {
			frame += fmt.Sprintf("%s  wgbird not answering: %v\n", now.Format(time.TimeOnly), err)
		}
		frame += fmt.Sprintf("\nEvery %s, %s. Ctrl-C to stop.\n", interval, now.Format(time.TimeOnly))
		if _, werr := io.WriteString(w, frame); werr != nil {
			return werr
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		st, err = c.Status(ctx)
		if ctx.Err() != nil {
			return nil
		}
	}
}
