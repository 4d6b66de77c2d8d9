package drain

import (
	"fmt"
	"log/slog"

	"github.com/wgbird/wgbird/internal/api"
)

// Target is what Restore drains: the daemon.
type Target interface {
	Services() []string
	SetDrain(names []string, dr *api.Drain) error
}

// Restore applies the drains kept in store to d, logging each one: the
// drains an operator set before wgbird restarted (or, persistent ones,
// before a reboot). Call it before the daemon runs, so that a drained
// service is never announced in between. A drain file that cannot be read
// still drains its service, with a reason that says so.
func Restore(d Target, store *Store, log *slog.Logger) error {
	loaded, stray := store.Load(d.Services())
	for _, path := range stray {
		log.Warn("ignoring drain file of a service that is not configured", "path", path)
	}
	for _, l := range loaded {
		if l.Err != nil {
			log.Error("drain file unreadable; draining the service anyway", "service", l.Service, "err", l.Err)
		} else {
			log.Info("drain restored", "service", l.Service, "reason", l.Drain.Reason,
				"since", l.Drain.Since, "persistent", l.Drain.Persist, "from", l.Path)
		}
		dr := l.Drain
		if err := d.SetDrain([]string{l.Service}, &dr); err != nil {
			return fmt.Errorf("restoring drain of %q: %w", l.Service, err)
		}
	}
	return nil
}
