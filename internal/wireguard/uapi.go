package wireguard

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/curve25519"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Summary is what one read of a device says, as far as wgbird's checks
// use it: no allowed IPs, no per-peer records, so a read of 10,000 peers
// allocates almost nothing.
type Summary struct {
	Name string
	// PrivateKey reports whether the device has a private key.
	PrivateKey bool
	// PublicKey is the public key of the private key; zero without one.
	PublicKey  wgtypes.Key
	ListenPort int
	// Peers counts every peer; Newest is the newest handshake of any of
	// them, zero when there has been none.
	Peers  int
	Newest time.Time
	// Ignored are the keys of the read's ignore list that the device has
	// as peers (wgbird's own probe peer); Counted and NewestCounted are
	// Peers and Newest without them.
	Ignored       []wgtypes.Key
	Counted       int
	NewestCounted time.Time
}

// summary counts peers for a Summary, leaving out ignore.
type summary struct {
	s      *Summary
	ignore []wgtypes.Key
}

func (c summary) add(key wgtypes.Key, handshake time.Time) {
	c.s.Peers++
	if handshake.After(c.s.Newest) {
		c.s.Newest = handshake
	}
	if slices.Contains(c.ignore, key) {
		if !slices.Contains(c.s.Ignored, key) {
			c.s.Ignored = append(c.s.Ignored, key)
		} // a key twice is no UAPI answer; count it once
		return
	}
	c.s.Counted++
	if handshake.After(c.s.NewestCounted) {
		c.s.NewestCounted = handshake
	}
}

// FromWgctrl summarizes a device read by wgctrl (kernel WireGuard, or
// any device read with Reader.Device), leaving ignore out of the counts.
func FromWgctrl(d *wgtypes.Device, ignore []wgtypes.Key) Summary {
	out := Summary{Name: d.Name, ListenPort: d.ListenPort, PrivateKey: d.PrivateKey != (wgtypes.Key{})}
	if out.PrivateKey {
		out.PublicKey = d.PublicKey
	}
	c := summary{&out, ignore}
	for i := range d.Peers {
		c.add(d.Peers[i].PublicKey, d.Peers[i].LastHandshakeTime)
	}
	return out
}

// Peer is what continuity uses of one peer: its key, endpoint, newest
// handshake and counters; no allowed IPs, no preshared key.
type Peer struct {
	Key wgtypes.Key
	// Endpoint is zero when the peer has none; an IPv4 address is
	// unmapped.
	Endpoint      netip.AddrPort
	LastHandshake time.Time // zero when there has been none
	RxBytes       int64
	TxBytes       int64
}

// Peers is a device's listen port and peer list as far as continuity uses
// them: about 100 bytes a peer, a tenth of wgctrl's structures.
type Peers struct {
	Name       string
	ListenPort int
	Peers      []Peer
}

// PeersFromWgctrl keeps what Peers holds of a device read by wgctrl
// (kernel WireGuard).
func PeersFromWgctrl(d *wgtypes.Device) *Peers {
	out := &Peers{Name: d.Name, ListenPort: d.ListenPort, Peers: make([]Peer, len(d.Peers))}
	for i, p := range d.Peers {
		q := Peer{Key: p.PublicKey, LastHandshake: p.LastHandshakeTime, RxBytes: p.ReceiveBytes, TxBytes: p.TransmitBytes}
		if p.Endpoint != nil {
			ap := p.Endpoint.AddrPort()
			q.Endpoint = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
		out.Peers[i] = q
	}
	return out
}

// UAPIError is a non-zero errno at the end of a UAPI answer.
type UAPIError struct{ Errno int64 }

func (e *UAPIError) Error() string { return fmt.Sprintf("UAPI error %d", e.Errno) }

// maxLine bounds one line of a UAPI answer. The longest wireguard-go
// writes is an endpoint or allowed IP (under 70 bytes); a longer one is
// garbage, not something to buffer.
const maxLine = 512

// uapiParser reads the answer to a UAPI "get=1" (the cross-platform
// configuration protocol, https://www.wireguard.com/xplatform/): key=value
// lines, the device's first, then each peer's from its public_key line,
// ending with errno=N and an empty line. It keeps what Summary holds,
// allocating nothing per line, and with peers set each peer's Peer too.
type uapiParser struct {
	s     Summary
	sum   summary
	peers *[]Peer // nil: a summary only

	inPeer bool
	key    wgtypes.Key // of the current peer
	sec    int64       // of its last handshake
	nsec   int64
	cur    Peer // the current peer's endpoint and counters (with peers)
	priv   [32]byte
	keys   *publicKeys // nil: derive the public key every time
}

// parseUAPI reads one UAPI get answer from r, leaving the peers in ignore
// out of Counted and NewestCounted. The answer must end with errno=0 and
// an empty line; anything else is an error naming the line. (An empty set
// is answered with errno=0 alone, which parses as an empty Summary.)
func parseUAPI(r *bufio.Reader, ignore []wgtypes.Key) (Summary, error) {
	return parseUAPIKeys(r, ignore, nil)
}

// parseUAPIKeys is parseUAPI deriving the public key through keys.
func parseUAPIKeys(r *bufio.Reader, ignore []wgtypes.Key, keys *publicKeys) (Summary, error) {
	p := uapiParser{keys: keys}
	p.sum = summary{&p.s, ignore}
	if err := p.parse(r); err != nil {
		return Summary{}, err
	}
	return p.s, nil
}

// parseUAPIPeers reads one UAPI get answer from r as Peers (without
// Name), room for hint peers made at once. Its errors are those of
// parseUAPI, and a bad endpoint or counter.
func parseUAPIPeers(r *bufio.Reader, hint int) (*Peers, error) {
	peers := make([]Peer, 0, hint)
	p := uapiParser{peers: &peers}
	p.sum = summary{&p.s, nil}
	if err := p.parse(r); err != nil {
		return nil, err
	}
	return &Peers{ListenPort: p.s.ListenPort, Peers: peers}, nil
}

func (p *uapiParser) parse(r *bufio.Reader) error {
	for n := 1; ; n++ {
		line, err := r.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull) || len(line) > maxLine:
			return fmt.Errorf("UAPI line %d: longer than %d bytes", n, maxLine)
		case err == io.EOF && len(line) == 0:
			return fmt.Errorf("UAPI answer ends after %d lines without errno: %w", n-1, io.ErrUnexpectedEOF)
		case err == io.EOF:
			return fmt.Errorf("UAPI line %d: no newline: %w", n, io.ErrUnexpectedEOF)
		case err != nil:
			return err
		}
		line = line[:len(line)-1]
		key, value, ok := bytes.Cut(line, []byte{'='})
		if !ok {
			return fmt.Errorf("UAPI line %d: %q is not key=value", n, line)
		}
		if string(key) == "errno" {
			errno, err := parseInt(value)
			if err != nil {
				return fmt.Errorf("UAPI line %d: errno: %w", n, err)
			}
			if errno != 0 {
				return &UAPIError{Errno: errno}
			}
			if end, err := r.ReadByte(); err != nil || end != '\n' {
				return fmt.Errorf("UAPI line %d: no empty line after errno=0", n+1)
			}
			p.endPeer()
			p.finish()
			return nil
		}
		if err := p.line(key, value); err != nil {
			return fmt.Errorf("UAPI line %d: %s: %w", n, key, err)
		}
	}
}

func (p *uapiParser) line(key, value []byte) error {
	if string(key) == "public_key" {
		p.endPeer()
		p.inPeer = true
		p.sec, p.nsec = 0, 0
		p.cur = Peer{}
		return decodeKey(p.key[:], value)
	}
	if !p.inPeer {
		switch string(key) {
		case "private_key":
			if err := decodeKey(p.priv[:], value); err != nil {
				return err
			}
			p.s.PrivateKey = p.priv != [32]byte{}
		case "listen_port":
			port, err := parseInt(value)
			if err != nil || port > 65535 {
				return fmt.Errorf("bad port %q", value)
			}
			p.s.ListenPort = int(port)
		}
		// fwmark and keys added later: not used by any check.
		return nil
	}
	var err error
	switch string(key) {
	case "last_handshake_time_sec":
		p.sec, err = parseInt(value)
	case "last_handshake_time_nsec":
		p.nsec, err = parseInt(value)
		if err == nil && p.nsec >= 1e9 {
			err = fmt.Errorf("%d nanoseconds", p.nsec)
		}
	}
	if err != nil || p.peers == nil {
		// endpoint, counters, preshared_key, allowed_ip, keepalive and
		// protocol_version: not used by any check.
		return err
	}
	switch string(key) {
	case "endpoint":
		ap, perr := netip.ParseAddrPort(string(value))
		if perr != nil {
			return fmt.Errorf("bad endpoint %q", value)
		}
		p.cur.Endpoint = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case "rx_bytes":
		p.cur.RxBytes, err = parseInt(value)
	case "tx_bytes":
		p.cur.TxBytes, err = parseInt(value)
	}
	return err
}

// endPeer counts the peer being read, if any.
func (p *uapiParser) endPeer() {
	if !p.inPeer {
		return
	}
	p.inPeer = false
	var hs time.Time
	if p.sec != 0 || p.nsec != 0 {
		hs = time.Unix(p.sec, p.nsec)
	}
	p.sum.add(p.key, hs)
	if p.peers != nil {
		p.cur.Key, p.cur.LastHandshake = p.key, hs
		*p.peers = append(*p.peers, p.cur)
	}
}

// finish derives the public key (through keys when set; a Peers read
// has no use for it) and forgets the private one.
func (p *uapiParser) finish() {
	if p.s.PrivateKey && p.peers == nil {
		p.s.PublicKey = p.keys.public(&p.priv)
	}
	clear(p.priv[:])
}

// publicKeys remembers the public keys of the private keys it derived,
// by the private key's SHA-256, not the key itself: a Reader derives a
// device's public key at every read, and the curve multiplication was a
// twentieth of an idle wgbird's CPU. A nil *publicKeys derives each time.
type publicKeys struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]wgtypes.Key
}

// maxPublicKeys bounds what publicKeys remembers: a key per device, and
// the keys a device had before a rotation.
const maxPublicKeys = 16

func (c *publicKeys) public(priv *[32]byte) wgtypes.Key {
	var sum [sha256.Size]byte
	if c != nil {
		sum = sha256.Sum256(priv[:])
		c.mu.Lock()
		k, ok := c.m[sum]
		c.mu.Unlock()
		if ok {
			return k
		}
	}
	var k wgtypes.Key
	pub, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		return k // a low-order point: no public key
	}
	copy(k[:], pub)
	if c != nil {
		c.mu.Lock()
		if c.m == nil || len(c.m) >= maxPublicKeys {
			c.m = make(map[[sha256.Size]byte]wgtypes.Key)
		}
		c.m[sum] = k
		c.mu.Unlock()
	}
	return k
}

// decodeKey decodes a key in hex, as UAPI writes them.
func decodeKey(dst, value []byte) error {
	if len(value) != 2*len(dst) {
		return fmt.Errorf("key of %d hex digits, want %d", len(value), 2*len(dst))
	}
	if _, err := hex.Decode(dst, value); err != nil {
		return fmt.Errorf("bad key: %w", err)
	}
	return nil
}

// parseInt parses a non-negative decimal without allocating.
func parseInt(b []byte) (int64, error) {
	if len(b) == 0 {
		return 0, errors.New("empty number")
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("bad number %q", b)
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, fmt.Errorf("number %q out of range", b)
		}
		n = n*10 + d
	}
	return n, nil
}
