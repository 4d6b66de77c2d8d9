// Package probe performs the initiator half of a WireGuard handshake against
// the local server and reports whether a valid response came back, which
// proves that the server process reads its UDP socket, holds the private key
// clients expect and has the probe peer configured.
//
// The handshake (Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s, messages 1 to 3) is
// implemented here with golang.org/x/crypto primitives rather than by driving
// golang.zx2c4.com/wireguard in-process, because a probe needs one packet out
// and one in with the reason when it fails: an in-process device brings a
// TUN, a dozen goroutines, timers that retry and rekey on their own schedule,
// a data session to tear down, and drops an unverifiable response without
// saying why, while this pure core is a page of code whose output is pinned
// by test vectors that a real wireguard-go responder accepts.
package probe
