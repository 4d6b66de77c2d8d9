package lab

import (
	"context"
	"fmt"
	"time"

	"github.com/wgbird/wgbird/internal/probe"
)

// Every wgbird of the lab runs with the active probe unless Config.NoProbe:
// makeKeys gives each server a probe key and lists its public key as a
// peer in the server's wg0.conf (so every heal's wg syncconf keeps it), and
// ensureWgbird writes [service.probe] with that key and the anycast public
// key clients expect, so a server whose key drifted fails the probe.

// ProbeKeyFile returns the path of a server's probe private key.
func (l *Lab) ProbeKeyFile(server string) string { return l.path(server, "probe.key") }

// ProbeTable is the [service.probe] table of a server's wgbird.toml:
// the probe's key file and the anycast public key clients expect, so
// that a server whose key drifted fails the probe.
func ProbeTable(keyFile, serverPublicKey string) string {
	return fmt.Sprintf("\n[service.probe]\nprivate_key_file = %q\nserver_public_key = %q\n", keyFile, serverPublicKey)
}

// wgbirdConf is the wgbird.toml of server: WgbirdConf, plus ProbeTable
// unless the lab runs without the probe, plus Config.WgbirdExtra.
func (l *Lab) wgbirdConf(server string) (string, error) {
	text := WgbirdConf(l.path(server, ""), l.cfg.Thresholds)
	if l.cfg.NoTakeover {
		text += "takeover = false\nvip_source = false\n"
	}
	if !l.cfg.NoProbe {
		pub, err := l.publicKey(server)
		if err != nil {
			return "", err
		}
		text += ProbeTable(l.ProbeKeyFile(server), pub)
	}
	if l.cfg.WgbirdExtra != "" {
		text += "\n" + l.cfg.WgbirdExtra
	}
	return text, nil
}

// SetTakeover turns client continuity on or off (Config.NoTakeover) for
// the wgbirds started from now on: a bench restarts them to measure both.
func (l *Lab) SetTakeover(on bool) { l.cfg.NoTakeover = !on }

// rotateKey is the KeyRotate fault: wg0's private key replaced by a fresh
// one. It returns the instant just before the key changed.
func (l *Lab) rotateKey(ctx context.Context, server string) (t0 time.Time, err error) {
	rotated := l.path(server, "rotated.key")
	if _, err := probe.GenerateKey(rotated, true); err != nil {
		return t0, err
	}
	t0 = time.Now()
	_, err = l.wg(ctx, server, "set", WGInterface, "private-key", rotated)
	return t0, err
}
