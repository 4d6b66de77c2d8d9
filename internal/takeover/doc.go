// Package takeover makes a WireGuard server start the handshake with a
// client itself, through wgctrl only, and leaves the peer configured
// exactly as the operator set it.
//
// A client whose flow the router moves to this server keeps sending on a
// session the server never had; WireGuard drops those packets silently
// and the client only re-handshakes after 15 s. Turning a peer's
// persistent keepalive from 0 to non-zero sends a keepalive at once
// (wireguard-go device/uapi.go, the kernel's set_peer), which starts a
// handshake when the peer has no session. A peer that still holds an old
// session (after a hang, or a drain that ended) would send that keepalive
// on its old keys instead, so it is removed and added again first, with
// its preshared key, allowed IPs and keepalive. Either way the keepalive
// ends at its configured value. wireguard-go sends at most one initiation
// per peer per 5 s (RekeyTimeout); a re-added peer starts afresh.
package takeover
