// Package link reads a network interface's state and addresses through
// netlink, judges it against the service's VIPs and reports link and
// address changes as they happen.
package link
