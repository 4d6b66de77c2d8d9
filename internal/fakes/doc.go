// Package fakes provides the one set of in-memory stand-ins for what the
// daemon talks to (BIRD, WireGuard, links, the probe, exec checks), which
// record what they were asked, for unit tests.
package fakes
