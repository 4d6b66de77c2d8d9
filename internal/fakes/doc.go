// Package fakes provides in-memory stand-ins for the daemon's BIRD,
// WireGuard and link readers, for tests that run a whole daemon.
package fakes
