package lab

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/wgbird/wgbird/internal/labjudge"
)

// BirdProtocol returns the `show protocols` line of the servers' static
// protocol (Protocol) in node's BIRD.
func (l *Lab) BirdProtocol(ctx context.Context, node string) (string, error) {
	out, err := l.birdc(ctx, node, "show", "protocols", Protocol)
	if err != nil {
		return "", err
	}
	return protocolLine(out, Protocol), nil
}

// protocolLine returns the `show protocols` line of protocol name.
func protocolLine(out, name string) string {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == name {
			return strings.Join(f, " ")
		}
	}
	return "not found in `show protocols`"
}

// latestHandshake returns the latest handshake of node's wg0 with the
// peer whose public key is peer; zero when there was none. A server's wg0
// has the probe as a second peer, which handshakes every interval on both
// servers: only the peer asked for counts.
func (l *Lab) latestHandshake(ctx context.Context, node, peer string, timeout time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := l.wg(ctx, node, "show", WGInterface, "latest-handshakes")
	if err != nil {
		return time.Time{}, err
	}
	hs, err := labjudge.ParseHandshakes(out)
	if err != nil {
		return time.Time{}, err
	}
	return hs[peer], nil
}

// ClientHandshake returns the latest handshake of the client called name
// with the servers' (shared) key; zero when there was none.
func (l *Lab) ClientHandshake(ctx context.Context, name string) (time.Time, error) {
	server, err := l.publicKey(Servers[0].Name)
	if err != nil {
		return time.Time{}, err
	}
	return l.latestHandshake(ctx, name, server, 2*time.Second)
}

// ActiveServer returns the server the client's tunnel currently goes to:
// the one with the newest handshake with the client (not with the probe).
// Both servers hold the same key, so which one answers depends only on the
// router's ECMP hash.
func (l *Lab) ActiveServer(ctx context.Context) (string, error) {
	return l.ServerOf(ctx, "client")
}

// ServerOf returns the server with the newest handshake with the client
// called name: the server whose session it uses (RoutedServer says where
// the router sends it now).
func (l *Lab) ServerOf(ctx context.Context, name string) (string, error) {
	client, err := l.publicKey(name)
	if err != nil {
		return "", err
	}
	best, bestAt := "", time.Time{}
	for _, s := range l.Servers() {
		t, err := l.latestHandshake(ctx, s.Name, client, 2*time.Second)
		if err != nil {
			continue // a hung server does not answer; it is not the active one
		}
		if t.After(bestAt) {
			best, bestAt = s.Name, t
		}
	}
	if best == "" {
		return "", fmt.Errorf("no server has a handshake with %s", name)
	}
	return best, nil
}
