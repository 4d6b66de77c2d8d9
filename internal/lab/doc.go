// Package lab builds the seed post's home network (a router that
// port-forwards its public address to the VIP, two or three WireGuard
// servers running bird2 and wgbird, WireGuard clients on the internet
// side) in network namespaces on one machine, injects faults into it and
// judges by the router's kernel routing table and the clients' tunnels
// (read through internal/labjudge; its processes run through
// internal/labproc), for cmd/wgbird-lab and the end-to-end tests.
package lab
