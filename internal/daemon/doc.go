// Package daemon runs each service's loop: it runs the service's checks
// (internal/check) by their policies, feeds the health state machine and
// keeps BIRD's protocols in the wanted state.
package daemon
