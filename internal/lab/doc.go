// Package lab builds the seed post's topology (a router and two WireGuard
// servers running bird2 and wgbird, and a WireGuard client) in network
// namespaces on one machine, injects faults into it and watches the
// router's kernel routing table, for cmd/wgbird-lab and the end-to-end
// tests.
package lab
