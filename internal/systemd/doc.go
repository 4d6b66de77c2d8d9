// Package systemd tells systemd about wgbird (readiness, watchdog) and asks
// it whether the system is shutting down.
package systemd
