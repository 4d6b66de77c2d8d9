// Package wireguard reads a WireGuard device with a deadline and judges
// whether it is healthy enough to announce its service.
//
// Which path runs when:
//
//   - Reader.Summary, the WireGuard check of every scheduled pass (every
//     interval, every fast_interval while a withdrawal is pending): for a
//     wireguard-go device (a UAPI socket in /var/run/wireguard) it sends
//     "get=1" and parses the answer as it streams in, keeping only what the
//     checks use (key set, listen port, peer counts, newest handshake):
//     about 0.4 ms of wgbird's time for 1,000 peers and no allocation per
//     peer. For kernel WireGuard (no socket) it reads through wgctrl's
//     generic netlink and summarizes that.
//   - Reader.Alive, the liveness check between scheduled passes (every
//     liveness_interval while the service is announced): an empty UAPI
//     "set", which changes nothing and which wireguard-go answers with
//     errno=0 after taking its configuration lock, so a hung or stopped
//     wireguard-go shows as a missed deadline within liveness_interval +
//     timeout instead of at the next interval. Kernel WireGuard cannot
//     hang as a process can: Alive does no I/O for a device without a
//     UAPI socket (one that is gone is seen by the link check, and by the
//     next scheduled read).
//   - Reader.Peers, continuity's refresh (a new session, changed figures,
//     or 10 s after its last read): over UAPI for wireguard-go, parsed as it
//     streams in, each peer's key, endpoint, newest handshake and counters
//     (about 100 bytes a peer, 0.7 ms of wgbird's time for 1,000); through
//     wgctrl for kernel WireGuard.
//   - Reader.Device, the control socket's peer listing (drain --wait) and
//     the group's key (the device's private key, read once): wgctrl's full
//     structures.
//
// Every UAPI request, Alive's and the reads', goes over one connection
// per device kept from one request to the next: wireguard-go serves
// request after request on one, and a socket, a connect and a close cost
// more than the request. Any error closes it, and a kept connection found
// closed (wireguard-go restarted) is dialed again at once.
//
// Every read shares the read of the same device in flight when that
// answers its question, and waits for it otherwise, so a device has at
// most one connection and one goroutine in flight however many callers
// ask, and a hung wireguard-go costs exactly that.
package wireguard
