// Package labproc runs and measures the lab's processes, knowing nothing
// of its topology: commands with a deadline (in a network namespace, with
// a private /run/wireguard), daemons that outlive their starter, their
// state, stop and wait, the mounts they hold, and what a leak shows in
// (fds, memory, goroutines from Prometheus metrics, UAPI connections).
package labproc
