// Package sniff watches the host's WireGuard packets on the wire with an
// AF_PACKET socket, for what a session takeover needs to know: which
// session indexes this server handed out, and transport packets that
// arrive for sessions it does not have.
//
// # Why sniffing is the trigger
//
// The router decides which server a client's flow reaches (ECMP hashing,
// a DNAT in front of it); no server can compute that, and with three or
// more servers a withdrawn server's clients spread over the others. A
// client that lands on a server without its session keeps sending
// transport packets (type 4) whose receiver index that server never gave
// out; WireGuard drops them silently. Seeing such a packet is proof that
// the route has moved and that this server, and no other, now receives
// the client: the one moment a server-initiated handshake is answered to
// the right server. Group knowledge alone (a member withdrawn, drained or
// silent) says neither which server nor when: a handshake started before
// the router moved the flow is answered to the old server and lost, and
// WireGuard then waits 5 s (RekeyTimeout) before the next one. Measured in
// the lab (issue 13): the client's type-4 packets reach the new server
// for the whole 15 s, the first one within one packet interval of the
// route change (100 ms for the lab client's pings), and a handshake
// started then brought the first reply back 13-91 ms after the route
// change. An idle client (keepalives only) is taken over when it next
// sends: its first packet is the trigger.
//
// # Cost
//
// The filter runs in the kernel and passes only handshake messages (one
// per session per two minutes) and transport packets for receiver
// indexes not in the known set: the server's own sessions, learned from
// the initiations and responses it sends, are dropped in the kernel, so
// steady traffic never wakes wgbird. Only a client sending on a session
// this server lacks, which is exactly what needs an answer, costs a
// wake-up per packet until the takeover's handshake completes.
package sniff
