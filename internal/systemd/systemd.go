package systemd

import (
	"context"
	"os/exec"
	"strings"
	"time"

	sdd "github.com/coreos/go-systemd/v22/daemon"
)

// Ready tells systemd that start-up is done (Type=notify). Outside systemd
// it does nothing.
func Ready() error {
	_, err := sdd.SdNotify(false, sdd.SdNotifyReady)
	return err
}

// Stopping tells systemd that wgbird is shutting down.
func Stopping() error {
	_, err := sdd.SdNotify(false, sdd.SdNotifyStopping)
	return err
}

// Watchdog pings systemd's watchdog every half WatchdogSec while alive
// reports true, and stops pinging (so systemd restarts wgbird) when it
// reports false. It returns at once when the watchdog is off.
func Watchdog(ctx context.Context, alive func(maxAge time.Duration) bool) error {
	every, err := sdd.SdWatchdogEnabled(false)
	if err != nil || every == 0 {
		return err
	}
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if alive(every / 2) {
				if _, err := sdd.SdNotify(false, sdd.SdNotifyWatchdog); err != nil {
					return err
				}
			}
		}
	}
}

// SystemStopping reports whether systemd says the system is going down
// (`systemctl is-system-running` prints "stopping"). Without systemd, or
// when systemctl does not answer within a second, it reports false.
func SystemStopping(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "systemctl", "is-system-running").Output()
	return strings.TrimSpace(string(out)) == "stopping"
}
