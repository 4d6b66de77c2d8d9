// Package rtnl reads the kernel's rtnetlink notifications (link, address
// and route changes) from one socket through Go's netpoller, with small
// parsers for the fields wgbird uses.
package rtnl
