// Package labjudge reads what the lab (internal/lab) is judged by, from
// inside its network namespaces and knowing nothing of its topology: a
// router's kernel routes to a prefix, read once or watched; ICMP echoes
// sent from a namespace, through a client's tunnel; a router's UDP
// connection tracking.
package labjudge

import "time"

// netlinkTimeout bounds every netlink request.
const netlinkTimeout = 10 * time.Second
