// Package labplot draws the lab benchmark's measured failover timelines
// as SVG (gonum/plot); only cmd/wgbird-lab uses it, never the daemon.
package labplot
