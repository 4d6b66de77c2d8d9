package tick

import "time"

// Until returns the wait from now to the next multiple of period on the
// clock, at least half a period away.
//
// An idle wgbird's cost is mostly the scheduler and Go's sysmon waking,
// per wake-up, not the work done then (issue 14): the service passes,
// their background checks, the group's datagrams and the other periodic
// work all wait for these instants, so with the default interval an idle
// wgbird wakes twice a second (the second for the liveness check), and
// the members of a group, with clocks kept by NTP, send to each other at
// the same instants too.
func Until(now time.Time, period time.Duration) time.Duration {
	if period <= 0 {
		return 0
	}
	next := now.Truncate(period).Add(period)
	if next.Sub(now) < period/2 {
		next = next.Add(period)
	}
	return next.Sub(now)
}
