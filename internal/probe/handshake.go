package probe

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"time"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/curve25519"
)

// Sizes of the handshake messages, mac1 and mac2 included.
const (
	InitiationSize  = 148
	ResponseSize    = 92
	CookieReplySize = 64
)

const (
	typeInitiation  = 1
	typeResponse    = 2
	typeCookieReply = 3

	construction = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
	identifier   = "WireGuard v1 zx2c4 Jason@zx2c4.com"
	labelMAC1    = "mac1----"
	labelCookie  = "cookie--"
)

// KeySize is the size of every key in the handshake.
const KeySize = 32

// PrivateKey is a Curve25519 private key. The three key types are distinct
// so that a local private key and a remote public key cannot be swapped in a
// call without a conversion.
type PrivateKey [KeySize]byte

// PublicKey is a Curve25519 public key.
type PublicKey [KeySize]byte

// PresharedKey is the optional symmetric key mixed into the handshake; the
// zero value means none.
type PresharedKey [KeySize]byte

// NewPrivateKey returns a random, clamped private key.
func NewPrivateKey() (PrivateKey, error) {
	var k PrivateKey
	if _, err := rand.Read(k[:]); err != nil {
		return k, fmt.Errorf("generating private key: %w", err)
	}
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
	return k, nil
}

// PublicKey derives the public key.
func (k PrivateKey) PublicKey() PublicKey {
	var p PublicKey
	curve25519.ScalarBaseMult((*[KeySize]byte)(&p), (*[KeySize]byte)(&k))
	return p
}

// String returns the base64 form used by wg(8) and wg0.conf.
func (k PrivateKey) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// String returns the base64 form used by wg(8) and wg0.conf.
func (k PublicKey) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// ParsePublicKey parses the base64 form used by wg(8).
func ParsePublicKey(s string) (PublicKey, error) {
	k, err := parseKey(s)
	return PublicKey(k), err
}

// ParsePrivateKey parses the base64 form written by wg genkey.
func ParsePrivateKey(s string) (PrivateKey, error) {
	k, err := parseKey(s)
	return PrivateKey(k), err
}

// ParsePresharedKey parses the base64 form written by wg genpsk.
func ParsePresharedKey(s string) (PresharedKey, error) {
	k, err := parseKey(s)
	return PresharedKey(k), err
}

func parseKey(s string) ([KeySize]byte, error) {
	var k [KeySize]byte
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return k, fmt.Errorf("parsing key: %w", err)
	}
	if len(b) != KeySize {
		return k, fmt.Errorf("parsing key: %d bytes, want %d", len(b), KeySize)
	}
	copy(k[:], b)
	return k, nil
}

// Timestamp is a TAI64N timestamp as carried, encrypted, in an initiation.
// The responder rejects an initiation whose timestamp is not later than the
// last one it accepted from the same peer (replay protection).
type Timestamp [12]byte

// whitener hides the low bits of the nanoseconds, as wireguard-go does, so
// the timestamp does not leak fine-grained timing.
const whitener = 1<<24 - 1

// NewTimestamp returns the TAI64N timestamp of t.
func NewTimestamp(t time.Time) Timestamp {
	var ts Timestamp
	binary.BigEndian.PutUint64(ts[:8], 0x400000000000000a+uint64(t.Unix()))
	binary.BigEndian.PutUint32(ts[8:], uint32(t.Nanosecond())&^whitener)
	return ts
}

// After reports whether ts is later than u, as the responder compares them.
func (ts Timestamp) After(u Timestamp) bool {
	for i := range ts {
		if ts[i] != u[i] {
			return ts[i] > u[i]
		}
	}
	return false
}

// next returns the smallest timestamp later than ts.
func (ts Timestamp) next() Timestamp {
	n := binary.BigEndian.Uint32(ts[8:])
	if n == 0xffffffff {
		binary.BigEndian.PutUint64(ts[:8], binary.BigEndian.Uint64(ts[:8])+1)
		n = 0
	} else {
		n++
	}
	binary.BigEndian.PutUint32(ts[8:], n)
	return ts
}

// ErrNotOurs marks a packet that is not an answer to this handshake (wrong
// type, size or receiver index): the caller ignores it and keeps waiting.
var ErrNotOurs = errors.New("not an answer to this handshake")

// Handshake is the initiator's state after sending an initiation: what it
// needs to verify the response or to answer a cookie reply.
type Handshake struct {
	localPriv PrivateKey
	localPub  PublicKey
	remotePub PublicKey
	psk       PresharedKey
	ephemeral PrivateKey
	sender    uint32
	hash      [blake2s.Size]byte
	chainKey  [blake2s.Size]byte
	msg       [InitiationSize]byte
}

// NewInitiation builds a handshake initiation (message type 1) from local to
// remote with mac1 set and mac2 zero, and returns it with the state needed
// to verify the answer. The ephemeral key and sender index are parameters so
// that the output is fully determined by the inputs.
func NewInitiation(local PrivateKey, remote PublicKey, psk PresharedKey, ephemeral PrivateKey, now time.Time, sender uint32) ([]byte, *Handshake, error) {
	return newInitiation(local, local.PublicKey(), remote, psk, ephemeral, NewTimestamp(now), sender)
}

// newInitiation is NewInitiation with the local public key precomputed.
func newInitiation(local PrivateKey, localPub, remote PublicKey, psk PresharedKey, ephemeral PrivateKey, ts Timestamp, sender uint32) ([]byte, *Handshake, error) {
	h := &Handshake{
		localPriv: local,
		localPub:  localPub,
		remotePub: remote,
		psk:       psk,
		ephemeral: ephemeral,
		sender:    sender,
	}
	h.chainKey = blake2s.Sum256([]byte(construction))
	h.hash = mixHash(h.chainKey, []byte(identifier))
	h.hash = mixHash(h.hash, remote[:])

	m := h.msg[:]
	m[0] = typeInitiation
	binary.LittleEndian.PutUint32(m[4:8], sender)
	ephPub := ephemeral.PublicKey()
	copy(m[8:40], ephPub[:])
	h.chainKey = kdf1(h.chainKey[:], ephPub[:])
	h.hash = mixHash(h.hash, ephPub[:])

	// es: encrypt our static public key.
	es, err := curve25519.X25519(ephemeral[:], remote[:])
	if err != nil {
		return nil, nil, fmt.Errorf("computing ephemeral-static secret: %w", err)
	}
	var key [KeySize]byte
	h.chainKey, key = kdf2(h.chainKey[:], es)
	seal(m[40:40], key, h.localPub[:], h.hash[:])
	h.hash = mixHash(h.hash, m[40:88])

	// ss: encrypt the timestamp.
	ss, err := curve25519.X25519(local[:], remote[:])
	if err != nil {
		return nil, nil, fmt.Errorf("computing static-static secret: %w", err)
	}
	h.chainKey, key = kdf2(h.chainKey[:], ss)
	seal(m[88:88], key, ts[:], h.hash[:])
	h.hash = mixHash(h.hash, m[88:116])

	mac1Key := labelledHash(labelMAC1, remote)
	copy(m[116:132], mac(mac1Key[:], m[:116]))
	out := h.msg // a copy: the caller may keep or change it
	return out[:], h, nil
}

// Sender is the sender index of the initiation; a response or cookie reply
// carries it as its receiver index.
func (h *Handshake) Sender() uint32 { return h.sender }

// ConsumeResponse verifies a handshake response (message type 2): mac1 and
// the authenticated empty payload, which only a responder holding the
// private key of the remote public key and our peer (with the same preshared
// key) configured can produce. It returns an error wrapping ErrNotOurs for a
// packet that is not a response to this initiation.
func (h *Handshake) ConsumeResponse(b []byte) error {
	if len(b) != ResponseSize || b[0] != typeResponse || b[1] != 0 || b[2] != 0 || b[3] != 0 {
		return fmt.Errorf("%w: %d-byte packet of type %d", ErrNotOurs, len(b), b[0])
	}
	if r := binary.LittleEndian.Uint32(b[8:12]); r != h.sender {
		return fmt.Errorf("%w: receiver index %d, want %d", ErrNotOurs, r, h.sender)
	}
	mac1Key := labelledHash(labelMAC1, h.localPub)
	if !hmac.Equal(mac(mac1Key[:], b[:60]), b[60:76]) {
		return errors.New("mac1 is wrong")
	}
	ephR := b[12:44]
	hashV := mixHash(h.hash, ephR)
	ck := kdf1(h.chainKey[:], ephR)
	ee, err := curve25519.X25519(h.ephemeral[:], ephR)
	if err != nil {
		return fmt.Errorf("computing ephemeral-ephemeral secret: %w", err)
	}
	ck = kdf1(ck[:], ee)
	se, err := curve25519.X25519(h.localPriv[:], ephR)
	if err != nil {
		return fmt.Errorf("computing static-ephemeral secret: %w", err)
	}
	ck = kdf1(ck[:], se)
	_, tau, key := kdf3(ck[:], h.psk[:])
	hashV = mixHash(hashV, tau[:])
	aead, _ := chacha20poly1305.New(key[:])
	if _, err := aead.Open(nil, make([]byte, chacha20poly1305.NonceSize), b[44:60], hashV[:]); err != nil {
		return errors.New("the empty payload does not decrypt (preshared key differs?)")
	}
	return nil
}

// ConsumeCookieReply decrypts a cookie reply (message type 3), which a
// responder under load sends instead of a response, and returns the
// initiation again with mac2 computed from the cookie: the responder then
// processes it. Resending the same initiation is valid because the one
// answered with a cookie was not consumed. It returns an error wrapping
// ErrNotOurs for a packet that is not a cookie reply to this initiation.
func (h *Handshake) ConsumeCookieReply(b []byte) ([]byte, error) {
	if len(b) != CookieReplySize || b[0] != typeCookieReply || b[1] != 0 || b[2] != 0 || b[3] != 0 {
		return nil, fmt.Errorf("%w: %d-byte packet of type %d", ErrNotOurs, len(b), b[0])
	}
	if r := binary.LittleEndian.Uint32(b[4:8]); r != h.sender {
		return nil, fmt.Errorf("%w: receiver index %d, want %d", ErrNotOurs, r, h.sender)
	}
	key := labelledHash(labelCookie, h.remotePub)
	aead, _ := chacha20poly1305.NewX(key[:])
	cookie, err := aead.Open(nil, b[8:32], b[32:64], h.msg[116:132])
	if err != nil {
		return nil, errors.New("the cookie does not decrypt")
	}
	out := h.msg
	copy(out[132:148], mac(cookie, out[:132]))
	return out[:], nil
}

func mixHash(h [blake2s.Size]byte, data []byte) [blake2s.Size]byte {
	d, _ := blake2s.New256(nil)
	d.Write(h[:])
	d.Write(data)
	var out [blake2s.Size]byte
	d.Sum(out[:0])
	return out
}

func labelledHash(label string, k PublicKey) [blake2s.Size]byte {
	d, _ := blake2s.New256(nil)
	d.Write([]byte(label))
	d.Write(k[:])
	var out [blake2s.Size]byte
	d.Sum(out[:0])
	return out
}

// mac is the keyed BLAKE2s-128 used for mac1 and mac2.
func mac(key, data []byte) []byte {
	d, _ := blake2s.New128(key)
	d.Write(data)
	return d.Sum(nil)
}

func newBlake2s() hash.Hash {
	d, _ := blake2s.New256(nil)
	return d
}

func hmacBlake2s(key []byte, in ...[]byte) [blake2s.Size]byte {
	m := hmac.New(newBlake2s, key)
	for _, b := range in {
		m.Write(b)
	}
	var out [blake2s.Size]byte
	m.Sum(out[:0])
	return out
}

// kdf1, kdf2 and kdf3 are HKDF with HMAC-BLAKE2s, as the Noise spec and
// WireGuard define them.
func kdf1(key, input []byte) [blake2s.Size]byte {
	prk := hmacBlake2s(key, input)
	return hmacBlake2s(prk[:], []byte{1})
}

func kdf2(key, input []byte) (t0, t1 [blake2s.Size]byte) {
	prk := hmacBlake2s(key, input)
	t0 = hmacBlake2s(prk[:], []byte{1})
	t1 = hmacBlake2s(prk[:], t0[:], []byte{2})
	return t0, t1
}

func kdf3(key, input []byte) (t0, t1, t2 [blake2s.Size]byte) {
	prk := hmacBlake2s(key, input)
	t0 = hmacBlake2s(prk[:], []byte{1})
	t1 = hmacBlake2s(prk[:], t0[:], []byte{2})
	t2 = hmacBlake2s(prk[:], t1[:], []byte{3})
	return t0, t1, t2
}

// seal encrypts plaintext with a zero nonce, appending to dst.
func seal(dst []byte, key [KeySize]byte, plaintext, ad []byte) {
	aead, _ := chacha20poly1305.New(key[:])
	aead.Seal(dst, make([]byte, chacha20poly1305.NonceSize), plaintext, ad)
}
