package labjudge

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// A client's WireGuard as wg(8) shows it: its endpoint for each peer (the
// address it follows) and each peer's latest handshake.

// ParseEndpoints parses `wg show IF endpoints`: "PUBKEY\tADDR:PORT", or
// "(none)" for a peer without one (the zero AddrPort).
func ParseEndpoints(out string) (map[string]netip.AddrPort, error) {
	return parsePeerColumn(out, "endpoints", func(v string) (netip.AddrPort, error) {
		if v == "(none)" {
			return netip.AddrPort{}, nil
		}
		return netip.ParseAddrPort(v)
	})
}

// ParseHandshakes parses `wg show IF latest-handshakes`: "PUBKEY\tUNIX",
// 0 for none (the zero Time).
func ParseHandshakes(out string) (map[string]time.Time, error) {
	return parsePeerColumn(out, "latest-handshakes", func(v string) (time.Time, error) {
		sec, err := strconv.ParseInt(v, 10, 64)
		if err != nil || sec <= 0 {
			return time.Time{}, err
		}
		return time.Unix(sec, 0), nil
	})
}

// parsePeerColumn parses the "PUBKEY\tVALUE" lines of one `wg show IF
// WHAT` column, each value by parse.
func parsePeerColumn[T any](out, what string, parse func(string) (T, error)) (map[string]T, error) {
	m := make(map[string]T)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("parsing %s line %q", what, line)
		}
		v, err := parse(f[1])
		if err != nil {
			return nil, fmt.Errorf("parsing %s line %q: %w", what, line, err)
		}
		m[f[0]] = v
	}
	return m, nil
}
