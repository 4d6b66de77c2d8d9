package config

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// The checks of single values, without I/O.

// checkGroup accepts a group name or number the way it could appear in
// /etc/group; whether it exists is checked when the socket is created.
func checkGroup(g string) string {
	if len(g) > 32 {
		return fmt.Sprintf("invalid group %q: longer than 32 bytes", g)
	}
	for _, r := range g {
		if r <= ' ' || r == 0x7f || r == ':' || r == '/' || r == ',' {
			return fmt.Sprintf("invalid group %q: must not contain whitespace, control characters, ':', ',' or '/'", g)
		}
	}
	return ""
}

// checkListen validates a metrics listen address: host:port, where host is
// empty (every address), an IP address or a host name, and port is 1..65535.
func checkListen(s string) string {
	if s == "" {
		return ""
	}
	const want = `want host:port such as "127.0.0.1:9474" or ":9474"`
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Sprintf("invalid address %q: %s", s, want)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '+' {
		return fmt.Sprintf("invalid port %q in %q: want a number from 1 to 65535", port, s)
	}
	if host == "" {
		return ""
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return ""
	}
	if !validHostname(host) {
		return fmt.Sprintf("invalid host %q in %q: %s", host, s, want)
	}
	return ""
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// checkPublicKey accepts a WireGuard public key as wg(8) prints it: 32
// bytes in standard base64.
func checkPublicKey(s string) string {
	const want = "want the 44 characters of base64 that wg pubkey prints"
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	switch {
	case err != nil:
		return fmt.Sprintf("invalid WireGuard public key %q: not base64; %s", s, want)
	case len(b) != 32:
		return fmt.Sprintf("invalid WireGuard public key %q: %d bytes, want 32; %s", s, len(b), want)
	}
	return ""
}

// checkEndpoint accepts an IP address and a port 1..65535: the probe sends
// to an address, never resolves a name.
func checkEndpoint(s string) string {
	ap, err := netip.ParseAddrPort(s)
	switch {
	case err != nil:
		return fmt.Sprintf(`invalid endpoint %q: want address:port such as "127.0.0.1:51820" or "[::1]:51820"`, s)
	case ap.Port() == 0:
		return fmt.Sprintf("invalid endpoint %q: want a port from 1 to 65535", s)
	}
	return ""
}

// checkInterface applies the kernel's rules for a network device name
// (dev_valid_name): 1 to 15 bytes, not "." or "..", no '/', ':' or
// whitespace.
func checkInterface(name string) string {
	switch {
	case name == "":
		return "must not be empty"
	case len(name) > 15:
		return fmt.Sprintf("invalid interface name %q: %d bytes, at most 15", name, len(name))
	case name == "." || name == "..":
		return fmt.Sprintf("invalid interface name %q", name)
	}
	for _, r := range name {
		if r == '/' || r == ':' || r == 0 || r == ' ' || r == '\t' || r == '\n' || r == '\v' || r == '\f' || r == '\r' {
			return fmt.Sprintf("invalid interface name %q: must not contain '/', ':' or whitespace", name)
		}
	}
	return ""
}

// validName reports whether s is a service or exec check name.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// validSymbol reports whether s is a BIRD symbol: [A-Za-z_][A-Za-z0-9_]*,
// at most 64 characters.
func validSymbol(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// prefixReason extracts why netip.ParsePrefix refused a prefix, without the
// function names and the input its error repeats.
func prefixReason(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "): "); i >= 0 && i+3 < len(msg) {
		return msg[i+3:]
	}
	return `want an address with a prefix length, such as "192.168.20.1/24"`
}
