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
	eps := make(map[string]netip.AddrPort)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("parsing endpoints line %q", line)
		}
		if f[1] == "(none)" {
			eps[f[0]] = netip.AddrPort{}
			continue
		}
		ap, err := netip.ParseAddrPort(f[1])
		if err != nil {
			return nil, fmt.Errorf("parsing endpoints line %q: %w", line, err)
		}
		eps[f[0]] = ap
	}
	return eps, nil
}

// ParseHandshakes parses `wg show IF latest-handshakes`: "PUBKEY\tUNIX".
func ParseHandshakes(out string) (map[string]time.Time, error) {
	hs := make(map[string]time.Time)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("parsing latest-handshakes line %q", line)
		}
		sec, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parsing latest-handshakes line %q: %w", line, err)
		}
		var t time.Time
		if sec > 0 {
			t = time.Unix(sec, 0)
		}
		hs[f[0]] = t
	}
	return hs, nil
}
