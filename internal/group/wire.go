package group

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

// Wire format, version 1. A datagram is
//
//	header (32 bytes, authenticated, not encrypted):
//	  magic "WGBG" | version 1 | 3 reserved zero bytes
//	  sender id (8 bytes, random per process)
//	  sequence (8 bytes, big endian, counting from 1 per sender id)
//	  time (8 bytes, big endian, Unix nanoseconds at sending)
//	nonce (24 bytes, random: XChaCha20-Poly1305)
//	ciphertext of the body, with its 16-byte tag
//
// and the body is
//
//	state (1 byte: State) | part (1) | parts (1) | entries (1)
//	entries × 62 bytes: peer public key (32) | endpoint address (16,
//	IPv4 mapped) | endpoint port (2, big endian) | handshake age (4, ms,
//	big endian; 0xffffffff none) | activity age (4, ms) | receiver index
//	of the sender's session (4, little endian as on WireGuard's wire; 0
//	unknown)
//
// A member's table goes out in up to MaxParts datagrams of at most
// MaxEntries entries each, so a datagram never exceeds MaxDatagram bytes.
const (
	magic       = "WGBG"
	version     = 1
	headerLen   = 32
	nonceLen    = chacha20poly1305.NonceSizeX
	tagLen      = chacha20poly1305.Overhead
	bodyHead    = 4
	entryLen    = 62
	MaxEntries  = 16
	MaxParts    = 64
	MaxDatagram = headerLen + nonceLen + bodyHead + MaxEntries*entryLen + tagLen
	noAge       = 0xffffffff
)

// State is what a member says of its own service.
type State uint8

const (
	Unknown State = iota
	Announced
	Withdrawn
	Drained
)

func (s State) String() string {
	switch s {
	case Announced:
		return "announced"
	case Withdrawn:
		return "withdrawn"
	case Drained:
		return "drained"
	}
	return "unknown"
}

// Entry is one peer as a member sees it.
type Entry struct {
	Peer     [32]byte
	Endpoint netip.AddrPort
	// HandshakeAge is how long ago the member's last handshake with the
	// peer was, at sending; negative: none.
	HandshakeAge time.Duration
	// ActivityAge is how long ago the member last saw the peer's counters
	// move; negative: never.
	ActivityAge time.Duration
	// Index is the receiver index the peer uses for its session with the
	// member (0 when unknown).
	Index uint32
}

// Message is one datagram's content.
type Message struct {
	Sender uint64
	Seq    uint64
	Time   time.Time
	State  State
	Part   int // 0-based
	Parts  int
	Peers  []Entry
}

// Key is a group's AEAD key.
type Key [chacha20poly1305.KeySize]byte

// DeriveKey derives the group key from secret material every member
// shares: the WireGuard private key of the anycast service (all servers
// hold the same one) or a configured secret. Different secrets give
// unrelated keys; the key reveals nothing of the secret.
func DeriveKey(secret []byte) (Key, error) {
	var k Key
	if len(secret) < 16 {
		return k, errors.New("group secret is shorter than 16 bytes")
	}
	r := hkdf.New(sha256.New, secret, []byte("wgbird group v1"), []byte("group key"))
	if _, err := io.ReadFull(r, k[:]); err != nil {
		return k, fmt.Errorf("deriving the group key: %w", err)
	}
	return k, nil
}

// Errors of Open; each names why a datagram was refused.
var (
	ErrShort    = errors.New("too short")
	ErrLong     = errors.New("longer than a group datagram")
	ErrMagic    = errors.New("not a wgbird group datagram")
	ErrVersion  = errors.New("unknown version")
	ErrAuth     = errors.New("authentication failed (another group, a wrong secret, or forged)")
	ErrBody     = errors.New("malformed body")
	ErrTooMany  = errors.New("too many entries")
	ErrBadEntry = errors.New("malformed entry")
)

// Seal encodes and encrypts m.
func Seal(key Key, m Message) ([]byte, error) {
	if len(m.Peers) > MaxEntries {
		return nil, fmt.Errorf("%w: %d, at most %d", ErrTooMany, len(m.Peers), MaxEntries)
	}
	if m.Parts < 1 || m.Parts > MaxParts || m.Part < 0 || m.Part >= m.Parts {
		return nil, fmt.Errorf("part %d of %d: out of range", m.Part, m.Parts)
	}
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		return nil, err
	}
	out := make([]byte, headerLen+nonceLen, MaxDatagram)
	copy(out, magic)
	out[4] = version
	binary.BigEndian.PutUint64(out[8:], m.Sender)
	binary.BigEndian.PutUint64(out[16:], m.Seq)
	binary.BigEndian.PutUint64(out[24:], uint64(m.Time.UnixNano()))
	if _, err := rand.Read(out[headerLen : headerLen+nonceLen]); err != nil {
		return nil, err
	}
	body := make([]byte, bodyHead, bodyHead+len(m.Peers)*entryLen)
	body[0], body[1], body[2], body[3] = byte(m.State), byte(m.Part), byte(m.Parts), byte(len(m.Peers))
	for _, e := range m.Peers {
		var b [entryLen]byte
		copy(b[:32], e.Peer[:])
		a16 := e.Endpoint.Addr().As16()
		copy(b[32:48], a16[:])
		binary.BigEndian.PutUint16(b[48:], e.Endpoint.Port())
		binary.BigEndian.PutUint32(b[50:], age(e.HandshakeAge))
		binary.BigEndian.PutUint32(b[54:], age(e.ActivityAge))
		binary.LittleEndian.PutUint32(b[58:], e.Index)
		body = append(body, b[:]...)
	}
	return aead.Seal(out, out[headerLen:headerLen+nonceLen], body, out[:headerLen]), nil
}

func age(d time.Duration) uint32 {
	switch {
	case d < 0:
		return noAge
	case d/time.Millisecond >= noAge:
		return noAge - 1
	}
	return uint32(d / time.Millisecond)
}

func unage(v uint32) time.Duration {
	if v == noAge {
		return -1
	}
	return time.Duration(v) * time.Millisecond
}

// Open authenticates and decodes a datagram. It checks only the datagram
// itself: replay and time are the Table's to judge.
func Open(key Key, b []byte) (Message, error) {
	var m Message
	switch {
	case len(b) > MaxDatagram:
		return m, ErrLong
	case len(b) < headerLen+nonceLen+tagLen+bodyHead:
		return m, ErrShort
	case string(b[:4]) != magic:
		return m, ErrMagic
	case b[4] != version || b[5] != 0 || b[6] != 0 || b[7] != 0:
		return m, ErrVersion
	}
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		return m, err
	}
	body, err := aead.Open(nil, b[headerLen:headerLen+nonceLen], b[headerLen+nonceLen:], b[:headerLen])
	if err != nil {
		return m, ErrAuth
	}
	m.Sender = binary.BigEndian.Uint64(b[8:])
	m.Seq = binary.BigEndian.Uint64(b[16:])
	m.Time = time.Unix(0, int64(binary.BigEndian.Uint64(b[24:])))
	if len(body) < bodyHead {
		return m, ErrBody
	}
	m.State, m.Part, m.Parts = State(body[0]), int(body[1]), int(body[2])
	n := int(body[3])
	switch {
	case m.State > Drained, m.Parts < 1, m.Parts > MaxParts, m.Part >= m.Parts:
		return m, ErrBody
	case n > MaxEntries:
		return m, ErrTooMany
	case len(body) != bodyHead+n*entryLen:
		return m, ErrBody
	}
	for i := range n {
		e := body[bodyHead+i*entryLen:]
		var en Entry
		copy(en.Peer[:], e[:32])
		addr := netip.AddrFrom16([16]byte(e[32:48])).Unmap()
		en.Endpoint = netip.AddrPortFrom(addr, binary.BigEndian.Uint16(e[48:]))
		en.HandshakeAge = unage(binary.BigEndian.Uint32(e[50:]))
		en.ActivityAge = unage(binary.BigEndian.Uint32(e[54:]))
		en.Index = binary.LittleEndian.Uint32(e[58:])
		if !addr.IsValid() || addr.IsUnspecified() || en.Endpoint.Port() == 0 {
			return m, ErrBadEntry
		}
		m.Peers = append(m.Peers, en)
	}
	return m, nil
}
