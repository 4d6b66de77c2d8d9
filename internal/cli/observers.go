package cli

import (
	"context"
	"log/slog"
	"time"

	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/daemon"
	"github.com/wgbird/wgbird/internal/health"
	"github.com/wgbird/wgbird/internal/hook"
	"github.com/wgbird/wgbird/internal/metrics"
)

// observers tells every observer each evaluation and transition.
type observers []daemon.Observer

var (
	_ daemon.Observer = observers{}
	_ daemon.Observer = (*metrics.Metrics)(nil)
	_ daemon.Observer = (*hook.Runner)(nil)
)

func (o observers) Evaluated(e health.Evaluation) {
	for _, x := range o {
		x.Evaluated(e)
	}
}

func (o observers) Transitioned(service string, tr health.Transition) {
	for _, x := range o {
		x.Transitioned(service, tr)
	}
}

// asList returns o as a list of observers (none for nil).
func asList(o daemon.Observer) observers {
	switch x := o.(type) {
	case nil:
		return nil
	case observers:
		return x
	}
	return observers{o}
}

// metricsCloseTimeout bounds how long a scrape in flight delays the stop.
const metricsCloseTimeout = 2 * time.Second

// startObservers starts what watches the daemon: the metrics endpoint
// ([metrics] listen, which also times the BIRD calls made through the
// returned BIRD) and the transition hook ([hook] command). The returned
// observer is nil when neither is configured; stop ends both, after
// giving queued hooks up to [hook] timeout.
func startObservers(cfg *config.Config, log *slog.Logger, b daemon.BIRD) (daemon.BIRD, daemon.Observer, func(), error) {
	var obs observers
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if cfg.Metrics.Listen != "" {
		m := metrics.New(Version)
		srv, err := metrics.Start(cfg.Metrics.Listen, m.Handler(), log)
		if err != nil {
			return nil, nil, nil, err
		}
		stops = append(stops, func() {
			ctx, cancel := context.WithTimeout(context.Background(), metricsCloseTimeout)
			defer cancel()
			srv.Close(ctx)
		})
		b = m.InstrumentBIRD(b)
		obs = append(obs, m)
	}
	if len(cfg.Hook.Command) > 0 {
		h, err := hook.Start(hook.Options{Command: cfg.Hook.Command, Timeout: cfg.Hook.Timeout, Log: log})
		if err != nil {
			stop()
			return nil, nil, nil, withCode(ExitConfig, err)
		}
		stops = append(stops, func() {
			ctx, cancel := context.WithTimeout(context.Background(), cfg.Hook.Timeout)
			defer cancel()
			h.Close(ctx)
		})
		obs = append(obs, h)
	}
	if len(obs) == 0 {
		return b, nil, stop, nil
	}
	return b, obs, stop, nil
}
