package bird

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// formatReply writes a reply as BIRD sends it; it inverts ParseReply.
func formatReply(r Reply) []byte {
	var b bytes.Buffer
	for _, l := range r.Lines {
		switch {
		case l.Code == 0 && l.Continued:
			b.WriteString(" ")
		case l.Continued:
			fmt.Fprintf(&b, "%04d-", l.Code)
		default:
			fmt.Fprintf(&b, "%04d ", l.Code)
		}
		b.WriteString(l.Text)
		b.WriteString("\n")
	}
	return b.Bytes()
}

// formatProtocols writes a reply to `show protocols` as BIRD 2.0.12 does.
func formatProtocols(ps []Protocol) []byte {
	var b strings.Builder
	b.WriteString("2002-Name       Proto      Table      State  Since         Info\n")
	for i, p := range ps {
		if i == 0 {
			b.WriteString("1002-")
		} else {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%-10s %-10s %-10s %-5s  %-12s  %s\n", p.Name, p.Proto, p.Table, p.State, p.Since, p.Info)
	}
	b.WriteString("0000 \n")
	return []byte(b.String())
}

func FuzzParseReply(f *testing.F) {
	for _, s := range capturedReplies {
		f.Add([]byte(s))
	}
	f.Add([]byte(capDisableEcho))
	f.Add([]byte("0011-wg_vip4: enabled\n"))
	f.Add([]byte("0000-x\n0000 \n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReply(b)
		if err != nil {
			return
		}
		if len(r.Lines) == 0 {
			t.Fatalf("ParseReply(%q) = no lines", b)
		}
		for i, l := range r.Lines {
			if l.Continued != (i < len(r.Lines)-1) {
				t.Fatalf("ParseReply(%q): line %d Continued = %v", b, i, l.Continued)
			}
			if l.Code < 0 || l.Code > 9999 || strings.Contains(l.Text, "\n") {
				t.Fatalf("ParseReply(%q): bad line %d %+v", b, i, l)
			}
		}
		if last := r.Lines[len(r.Lines)-1]; r.Code != last.Code {
			t.Fatalf("ParseReply(%q): Code %d, final line %d", b, r.Code, last.Code)
		}
		if got := formatReply(r); !bytes.Equal(got, b) {
			t.Fatalf("ParseReply(%q) formats back as %q", b, got)
		}
		if e := r.Err(); e != nil && !strings.HasPrefix(e.Error(), "bird replied ") {
			t.Fatalf("Err() = %v", e)
		}
	})
}

func FuzzParseProtocols(f *testing.F) {
	for _, s := range capturedReplies {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReply(b)
		if err != nil {
			return
		}
		ps, err := ParseProtocols(r)
		if err != nil {
			return
		}
		for _, p := range ps {
			for _, w := range []string{p.Name, p.Proto, p.Table, p.State} {
				if w == "" || strings.Contains(w, " ") {
					t.Fatalf("ParseProtocols(%q): bad column %q in %+v", b, w, p)
				}
			}
			if p.Since == "" || p.Since != strings.TrimSpace(p.Since) || p.Info != strings.TrimSpace(p.Info) {
				t.Fatalf("ParseProtocols(%q): untrimmed %+v", b, p)
			}
			if strings.Contains(p.Since, "  ") {
				return // such a Since could not be told apart from Info
			}
		}
		// What BIRD would print for these protocols reads back the same.
		out := formatProtocols(ps)
		r2, err := ParseReply(out)
		if err != nil {
			t.Fatalf("ParseReply(%q): %v", out, err)
		}
		ps2, err := ParseProtocols(r2)
		if err != nil {
			t.Fatalf("ParseProtocols(%q): %v", out, err)
		}
		if diff := cmp.Diff(ps, ps2); diff != "" {
			t.Fatalf("ParseProtocols(%q) then formatted as %q: (-want +got):\n%s", b, out, diff)
		}
	})
}
