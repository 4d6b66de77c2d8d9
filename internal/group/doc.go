// Package group shares each WireGuard peer's current endpoint, receiver
// index and recent activity among the wgbird instances of one anycast
// group, over UDP on the LAN, authenticated and encrypted.
//
// A server that takes over a client needs the client's endpoint and
// which peer a packet belongs to; the server the client was on knows
// both, and a server that restarted knows neither. Every member sends its
// table every second (and at once when its own state changes) to every
// configured member; a member not heard for 3 s is silent.
//
// Security: the key is derived with HKDF-SHA256 from the WireGuard
// private key all members of an anycast service already hold (or a
// configured secret), so only the group can write or read it. Every
// datagram is XChaCha20-Poly1305 sealed with a random nonce over a header
// that carries a per-process sender id, a sequence number and the send
// time. A datagram is refused unless it comes from a configured member's
// address, opens with the key, has a newer sequence than that sender's
// last (or, from a new sender id, a newer time than the member's last
// word: a restart), and a time within 30 s of ours. Receiving is rate
// limited per member before decryption, a datagram holds at most 16
// entries and a member at most 64 datagrams' worth, and entries expire
// 180 s after the activity they report (a WireGuard session's lifetime).
// A refused datagram changes nothing and is counted per member.
package group
