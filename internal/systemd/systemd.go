package systemd

import (
	"context"
	"os"
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

// Restarting reports whether systemd is restarting this process's unit
// (`systemctl restart`, `try-restart`, an upgrade): a restart job for the
// unit named in /proc/self/cgroup is queued. Outside systemd, or when
// systemctl does not answer within a second, it reports false.
func Restarting(ctx context.Context) bool {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return false
	}
	unit := unitOf(string(b))
	if unit == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "systemctl", "list-jobs", "--no-legend", "--plain").Output()
	return restartQueued(string(out), unit)
}

// unitOf returns the .service unit of a /proc/self/cgroup, "" for none.
func unitOf(cgroup string) string {
	for _, line := range strings.Split(cgroup, "\n") {
		parts := strings.Split(strings.TrimSpace(line), "/")
		for i := len(parts) - 1; i >= 0; i-- {
			if strings.HasSuffix(parts[i], ".service") {
				return parts[i]
			}
		}
	}
	return ""
}

// restartQueued reads `systemctl list-jobs --no-legend --plain` (JOB UNIT
// TYPE STATE per line) for a restart job of unit.
func restartQueued(jobs, unit string) bool {
	for _, line := range strings.Split(jobs, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == unit && strings.Contains(f[2], "restart") {
			return true
		}
	}
	return false
}
