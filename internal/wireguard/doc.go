// Package wireguard reads a WireGuard device through wgctrl with a deadline
// and judges whether it is healthy enough to announce its service.
package wireguard
