package birdlint

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/wgbird/wgbird/internal/bird"
)

// Detail is one protocol of `show protocols all`.
type Detail struct {
	bird.Protocol
	// Attrs are the protocol's own "Key: value" lines ("Message",
	// "BGP state", "Neighbor address", ...).
	Attrs    map[string]string
	Channels []Channel
}

// Channel is one channel of a protocol ("Channel ipv4").
type Channel struct {
	Name         string // "ipv4"
	State        string // "UP", "DOWN"
	Table        string // "master4"
	InputFilter  string // "ACCEPT", "REJECT", a filter's name or "(unnamed)"
	OutputFilter string
	// HasRoutes: BIRD printed the Routes line (only for channels up).
	HasRoutes                     bool
	Imported, Exported, Preferred int
}

// Reply codes of `show protocols all` and `show route ... count`.
const (
	codeProtocolRow    = 1002
	codeProtocolDetail = 1006
	codeRouteCount     = 1007
)

// ParseProtocolsAll reads the reply to `show protocols all`: each row of
// `show protocols` with the channels and attributes of its detail block.
func ParseProtocolsAll(r bird.Reply) ([]Detail, error) {
	rows, err := bird.ParseProtocols(r)
	if err != nil {
		return nil, err
	}
	out := make([]Detail, len(rows))
	for i, p := range rows {
		out[i] = Detail{Protocol: p, Attrs: map[string]string{}}
	}
	row := -1
	block := 0
	var ch *Channel
	for i, l := range r.Lines {
		if l.Code != 0 || !l.Continued {
			block = l.Code
		}
		switch block {
		case codeProtocolRow:
			row++
			ch = nil
			continue
		case codeProtocolDetail:
		default:
			continue
		}
		if row < 0 || row >= len(out) {
			return nil, fmt.Errorf("parsing show protocols all: line %d: detail before any protocol", i+1)
		}
		d := &out[row]
		text := strings.TrimSpace(l.Text)
		if name, ok := strings.CutPrefix(text, "Channel "); ok {
			d.Channels = append(d.Channels, Channel{Name: strings.TrimSpace(name)})
			ch = &d.Channels[len(d.Channels)-1]
			continue
		}
		key, val, ok := strings.Cut(text, ":")
		if !ok {
			continue // "Local capabilities", "Multiprotocol", ...
		}
		val = strings.TrimSpace(val)
		if ch == nil {
			if _, dup := d.Attrs[key]; !dup {
				d.Attrs[key] = val
			}
			continue
		}
		switch key {
		case "State":
			ch.State = val
		case "Table":
			ch.Table = val
		case "Input filter":
			ch.InputFilter = val
		case "Output filter":
			ch.OutputFilter = val
		case "Routes":
			n, err := parseRoutes(val)
			if err != nil {
				return nil, fmt.Errorf("parsing show protocols all: line %d: %w", i+1, err)
			}
			ch.HasRoutes = true
			ch.Imported, ch.Exported, ch.Preferred = n[0], n[1], n[2]
		}
	}
	return out, nil
}

var routesRE = regexp.MustCompile(`^(\d+) imported, (?:(\d+) filtered, )?(\d+) exported, (\d+) preferred$`)

// parseRoutes reads "1 imported, 0 exported, 1 preferred" (BIRD adds
// "N filtered, " after imported when import keep filtered is on).
func parseRoutes(s string) ([3]int, error) {
	m := routesRE.FindStringSubmatch(s)
	if m == nil {
		return [3]int{}, fmt.Errorf("unexpected Routes line %q", s)
	}
	var n [3]int
	for i, g := range []string{m[1], m[3], m[4]} {
		v, err := strconv.Atoi(g)
		if err != nil {
			return n, fmt.Errorf("reading the Routes line %q: %w", s, err)
		}
		n[i] = v
	}
	return n, nil
}

var countRE = regexp.MustCompile(`^(\d+) of (\d+) routes for (\d+) networks in table (\S+)$`)

// ParseRouteCount reads the reply to `show route ... count`: how many
// routes matched, summed over the tables shown.
func ParseRouteCount(r bird.Reply) (int, error) {
	if err := r.Err(); err != nil {
		return 0, err
	}
	total, seen := 0, false
	for _, l := range r.Lines {
		if l.Code != codeRouteCount {
			continue
		}
		m := countRE.FindStringSubmatch(strings.TrimSpace(l.Text))
		if m == nil {
			return 0, fmt.Errorf("parsing route count: unexpected line %q", l.Text)
		}
		n, err := strconv.Atoi(m[1])
		if err != nil {
			return 0, fmt.Errorf("parsing route count %q: %w", l.Text, err)
		}
		total += n
		seen = true
	}
	if !seen {
		return 0, fmt.Errorf("parsing route count: no count line (%d) in the reply", codeRouteCount)
	}
	return total, nil
}
