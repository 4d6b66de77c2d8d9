// Package rtnl reads the kernel's rtnetlink notifications (link, address
// and route changes) from one socket through Go's netpoller, and asks for
// a link and its addresses on another kept open, with small parsers for
// the fields wgbird uses.
package rtnl
