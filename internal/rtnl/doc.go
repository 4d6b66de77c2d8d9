// Package rtnl reads the kernel's rtnetlink notifications (link, address
// and route changes) from one socket through Go's netpoller, and asks for
// a link, its addresses or a route's source on another kept open (Kept),
// with small parsers for the fields wgbird uses.
package rtnl
