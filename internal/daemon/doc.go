// Package daemon wires WireGuard, link and exec checks to the health state
// machine and keeps BIRD's protocols in the wanted state.
package daemon
