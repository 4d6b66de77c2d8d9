// Package metrics exports what the daemon sees, and how BIRD answers it, as
// Prometheus metrics on an HTTP listener.
package metrics
