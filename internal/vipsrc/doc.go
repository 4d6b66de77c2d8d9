// Package vipsrc makes every packet WireGuard sends from its listen port
// leave with the service's VIP as its source address, through a policy
// rule and a routing table of its own (netlink only).
//
// # Why
//
// A WireGuard server answers a client from the address the client wrote
// to, as long as it has that address cached (wireguard-go's sticky
// sockets, the kernel's endpoint src4/src6). An endpoint set by hand (a
// session takeover), and a server whose handshake went unanswered (both
// implementations clear the cached source before retrying), have none:
// the kernel then picks the source from the route, which is the server's
// unicast address. The client, or the home router's DNAT in front of the
// VIP, sees a new address, and the client's endpoint follows it off the
// VIP: the next failover strands it, and a drained server pulls it back.
//
// # Mechanism
//
// One rule per address family,
//
//	ip rule add pref 22338 from 0.0.0.0/32 iif lo ipproto udp sport 51820 lookup 22338 proto 0x57
//	ip -6 rule add pref 22338 iif lo ipproto udp sport 51820 lookup 22338 proto 0x57
//
// sends the route lookup of every locally generated UDP packet from the
// listen port (IPv4: every one without a source yet) to a table that
// mirrors the main table route for route, with `src VIP` on every unicast
// route, behind an `unreachable default metric 4294967295`: the guard. The lookup, and so the choice of
// gateway and interface, stays the main table's; only the source differs.
// Both WireGuard implementations get there: wireguard-go sends from an
// unconnected UDP socket bound to the port (udp_sendmsg's flow carries the
// source port), and the kernel's send4/send6 fill fl4_sport/fl6_sport and
// the device's fwmark into the flow they route. A cached source is used as
// it is (it is the VIP whenever the client wrote to the VIP); only a
// missing one is chosen by this table. An fwmark on the device does not
// matter: the rule does not match on marks.
//
// The kernel removes IPv4 routes whose source is an address that goes away
// (and clears the source of IPv6 ones), so the mirror disappears with the
// VIP: a Keeper follows route and address events and puts it back as soon
// as the VIP returns, and re-mirrors whenever the main table changes.
// While the VIP is gone the guard answers every lookup, so WireGuard's
// packets are refused (EHOSTUNREACH) instead of leaving from the unicast
// address, which would pin the client there (the soak found one: a server
// whose VIP was removed kept sending keepalives). An IPv4 packet with a
// cached source (a peer that wrote to the unicast address) never reaches
// the table; IPv6 cannot tell it apart (a rule with a source never matches
// a lookup without one), so without the VIP such an IPv6 peer is not
// answered either.
//
// # Requirements and limits
//
// Rules matching ipproto and sport need Linux 4.17. An older kernel
// accepts the rule but silently drops the match, which would send all of
// the host's own traffic through the table: Sync reads the rule back and
// refuses (and deletes) a rule without its port match. A host without a
// route to a client has none in the mirror either; Source reports what a
// packet to an endpoint would carry. Only the main table is mirrored: a
// host whose WireGuard traffic is steered by other policy rules (VRFs,
// other tables) is not covered.
package vipsrc
