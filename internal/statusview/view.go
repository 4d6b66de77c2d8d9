package statusview

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wgbird/wgbird/internal/api"
)

// View is everything the table shows.
type View struct {
	// Version is wgbird's version; "" leaves it out.
	Version string
	// BIRD is what is known of BIRD's control socket; nil when the status
	// does not say (then the services' BIRD errors stand for it).
	BIRD *api.BIRDStatus
	// Services in the order they are shown.
	Services []api.ServiceStatus
	// Warnings about set-ups that defeat failover, from `wgbird check`.
	Warnings []string
	// Notes are things the check could not verify; shown after warnings.
	Notes []string
	// Now is the time ages are counted from; times are shown in its
	// location.
	Now time.Time
}

// Render writes the table.
func Render(w io.Writer, v View) error {
	_, err := io.WriteString(w, v.String())
	return err
}

// String returns the table.
func (v View) String() string {
	var b bytes.Buffer
	render(&b, v)
	// tabwriter pads empty last cells (a protocol without info).
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

func render(b *bytes.Buffer, v View) {
	if v.Version != "" {
		fmt.Fprintf(b, "wgbird %s\n", v.Version)
	}
	fmt.Fprintf(b, "BIRD: %s\n", birdLine(v))
	for _, s := range v.Services {
		b.WriteByte('\n')
		service(b, v, s)
	}
	if len(v.Warnings) > 0 {
		fmt.Fprintf(b, "\nWarnings:\n")
		for _, w := range v.Warnings {
			fmt.Fprintf(b, "  ! %s\n", indent(wrap(w, wrapWidth-4), "    "))
		}
	}
	if len(v.Notes) > 0 {
		fmt.Fprintf(b, "\nNot verified:\n")
		for _, n := range v.Notes {
			fmt.Fprintf(b, "  - %s\n", indent(wrap(n, wrapWidth-4), "    "))
		}
	}
}

func birdLine(v View) string {
	if bd := v.BIRD; bd != nil {
		var parts []string
		if bd.Reachable {
			parts = append(parts, "reachable")
		} else {
			parts = append(parts, "NOT REACHABLE")
		}
		if bd.Socket != "" {
			parts[0] += " at " + bd.Socket
		}
		if bd.Version != "" {
			parts = append(parts, "BIRD "+bd.Version)
		}
		if bd.RTT > 0 {
			parts = append(parts, "round trip "+human(bd.RTT))
		}
		if bd.Error != "" {
			parts = append(parts, bd.Error)
		}
		return strings.Join(parts, ", ")
	}
	failing, read := 0, 0
	for _, s := range v.Services {
		if s.BIRDError != "" {
			failing++
		}
		if len(s.Protocols) > 0 {
			read++
		}
	}
	switch {
	case failing == 0 && read == 0:
		return "not asked yet"
	case failing == 0:
		return "answering"
	case failing == len(v.Services):
		return "FAILING for every service (see below)"
	}
	return fmt.Sprintf("FAILING for %d of %d services (see below)", failing, len(v.Services))
}

func service(b *bytes.Buffer, v View, s api.ServiceStatus) {
	state := strings.ToUpper(s.State)
	if s.State == "" {
		state = "UNKNOWN"
	}
	fmt.Fprintf(b, "%s (interface %s): %s", s.Name, s.Interface, state)
	if !s.Since.IsZero() {
		fmt.Fprintf(b, " since %s", when(v, s.Since))
	}
	b.WriteByte('\n')
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	if s.Reason != "" {
		fmt.Fprintf(tw, "  reason:\t%s\n", s.Reason)
	}
	health := "yes"
	if !s.Healthy {
		health = "NO"
	}
	if s.CheckedAt.IsZero() {
		health = "not checked yet"
	} else {
		health += ", checked " + ago(v, s.CheckedAt)
	}
	fmt.Fprintf(tw, "  healthy:\t%s\n", health)
	if d := s.Drain; d != nil {
		kind := "until undrain, kept across wgbird restarts"
		if d.Persist {
			kind = "until undrain, persistent across reboots"
		}
		line := fmt.Sprintf("drained since %s, %s", when(v, d.Since), kind)
		if d.Reason != "" {
			line += ": " + oneLine(d.Reason)
		}
		fmt.Fprintf(tw, "  drain:\t%s\n", line)
	} else {
		fmt.Fprintf(tw, "  drain:\tnot drained\n")
	}
	if s.BIRDError != "" {
		fmt.Fprintf(tw, "  BIRD error:\t%s\n", s.BIRDError)
	}
	tw.Flush()

	if len(s.Checks) > 0 {
		tw = tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  CHECK\tRESULT\tTOOK\tDETAIL\n")
		for _, c := range s.Checks {
			res := "ok"
			switch {
			case !c.OK && c.Hard:
				res = "FAIL (hard)"
			case !c.OK:
				res = "FAIL"
			}
			took := "-"
			if c.Took > 0 {
				took = human(c.Took)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Name, res, took, oneLine(c.Detail))
		}
		tw.Flush()
	}

	tw = tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	if len(s.Protocols) == 0 {
		fmt.Fprintf(tw, "  BIRD PROTOCOL\t(not read yet)\n")
	} else {
		fmt.Fprintf(tw, "  BIRD PROTOCOL\tPROTO\tTABLE\tSTATE\tSINCE\tINFO\n")
		for _, p := range s.Protocols {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Proto, p.Table, p.State, p.Since, p.Info)
		}
	}
	tw.Flush()
	if c := s.Continuity; c != nil {
		continuity(b, v, c)
	}
}

// continuity shows VIP-sourcing, takeovers and the group.
func continuity(b *bytes.Buffer, v View, c *api.Continuity) {
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	if vs := c.VIPSource; vs != nil {
		state := "in place"
		if !vs.InPlace {
			state = "NOT IN PLACE"
		}
		fmt.Fprintf(tw, "  VIP source:\t%s: %s\n", state, oneLine(vs.Detail))
		for _, w := range vs.Warnings {
			fmt.Fprintf(tw, "  \t! %s\n", oneLine(w))
		}
	}
	if t := c.Takeover; t != nil {
		line := "off"
		switch {
		case t.Error != "":
			line = "NOT WORKING: " + oneLine(t.Error)
		case t.Enabled:
			line = fmt.Sprintf("%d (%d answered, %d unanswered)", t.Stats.Takeovers, t.Stats.Answered, t.Stats.Unanswered)
			if l := t.Last; l != nil {
				line += fmt.Sprintf("; last %s: peer %s at %s (%s, via %s)", when(v, l.At), shortKey(l.Peer), l.Endpoint, l.Method, l.Via)
				if l.FirstPacketBack > 0 {
					line += ", first packet back after " + human(l.FirstPacketBack)
				}
				if l.Error != "" {
					line += ", FAILED: " + oneLine(l.Error)
				}
			}
		}
		fmt.Fprintf(tw, "  takeovers:\t%s\n", line)
	}
	tw.Flush()
	if g := c.Group; g != nil {
		tw = tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		if g.Error != "" {
			fmt.Fprintf(tw, "  group (port %d):\tNOT RUNNING: %s\n", g.Port, oneLine(g.Error))
		}
		fmt.Fprintf(tw, "  GROUP MEMBER\tSTATE\tHEARD\tPEERS\tREFUSED\n")
		for _, m := range g.Members {
			heard := "never"
			if !m.Heard.IsZero() {
				heard = ago(v, m.Heard)
			}
			state := m.State
			if m.Silent {
				state = "SILENT"
			}
			refused := fmt.Sprint(m.Refused)
			if m.LastRefusal != "" {
				refused += " (" + oneLine(m.LastRefusal) + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\n", m.Address, state, heard, m.Peers, refused)
		}
		tw.Flush()
	}
}

func shortKey(k string) string {
	if len(k) > 8 {
		return k[:8] + "…"
	}
	return k
}

// when is an absolute time in Now's location and its age.
func when(v View, t time.Time) string {
	t = t.In(v.Now.Location())
	layout := time.DateTime
	if y, m, d := t.Date(); y == v.Now.Year() && m == v.Now.Month() && d == v.Now.Day() {
		layout = time.TimeOnly
	}
	return t.Format(layout) + " (" + ago(v, t) + ")"
}

func ago(v View, t time.Time) string {
	d := v.Now.Sub(t)
	switch {
	case d < 0:
		return "in the future: clocks differ"
	case d < time.Second:
		return "just now"
	}
	return age(d) + " ago"
}

// age is d for a person: "14s", "3m12s", "5h3m", "2d4h".
func age(d time.Duration) string {
	d = d.Truncate(time.Second)
	h, m, sec := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", sec)
	case d < time.Hour && sec == 0:
		return fmt.Sprintf("%dm", m)
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", m, sec)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", h, m)
	}
	return fmt.Sprintf("%dd%dh", h/24, h%24)
}

// human is a short duration with two or three significant digits: "85µs",
// "1.9ms", "301ms", "2.5s".
func human(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return d.String()
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// wrapWidth is where warnings and notes wrap, for an 80 to 100 column
// terminal.
const wrapWidth = 96

// wrap breaks each line of s at spaces so that lines stay within width
// where words allow.
func wrap(s string, width int) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		cur := ""
		for _, w := range strings.Fields(line) {
			switch {
			case cur == "":
				cur = w
			case len(cur)+1+len(w) > width:
				out = append(out, cur)
				cur = w
			default:
				cur += " " + w
			}
		}
		out = append(out, cur)
	}
	return strings.Join(out, "\n")
}

// indent puts prefix before every line of s but the first.
func indent(s, prefix string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+prefix)
}
