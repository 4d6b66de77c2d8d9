package bird

import (
	"context"
	"fmt"
	"strings"
)

// Status is what `show status` says of BIRD.
type Status struct {
	// Version is BIRD's version, "2.0.12".
	Version string
	// LastReboot and LastReconfig are BIRD's own words for when it started
	// and when it last read its configuration ("2026-12-01
	// 10:48:05.185"): a change of either means BIRD has set every protocol
	// back to its configuration, forgetting any CLI enable or disable.
	LastReboot, LastReconfig string
}

// Generation identifies one configuration BIRD runs: it changes on every
// restart and every `configure`.
func (s Status) Generation() string { return s.LastReboot + " / " + s.LastReconfig }

// ParseStatus reads the reply to `show status`: the version line (code
// 1000) and the lines "Last reboot on ..." and "Last reconfiguration on
// ...", which BIRD 2 and 3 send as continuations of the router ID block.
func ParseStatus(r Reply) (Status, error) {
	var s Status
	for _, l := range r.Lines {
		switch {
		case l.Code == 1000:
			s.Version = strings.TrimPrefix(l.Text, "BIRD ")
		case strings.HasPrefix(l.Text, "Last reboot on "):
			s.LastReboot = strings.TrimPrefix(l.Text, "Last reboot on ")
		case strings.HasPrefix(l.Text, "Last reconfiguration on "):
			s.LastReconfig = strings.TrimPrefix(l.Text, "Last reconfiguration on ")
		}
	}
	if s.Version == "" {
		return Status{}, fmt.Errorf("no version line (1000) in the reply")
	}
	return s, nil
}

// ReadStatus sends `show status` and parses its reply.
func (c *Client) ReadStatus(ctx context.Context) (Status, error) {
	r, err := c.do(ctx, "show status")
	if err == nil {
		err = r.Err()
	}
	var s Status
	if err == nil {
		s, err = ParseStatus(r)
	}
	if err != nil {
		return Status{}, fmt.Errorf("reading bird status: %w", err)
	}
	return s, nil
}
