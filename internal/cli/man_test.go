package cli

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// manSections splits a generated man page into its .SS subsections by
// heading.
func manSections(page string) map[string]string {
	out := map[string]string{}
	parts := strings.Split(page, "\n.SS ")
	for _, p := range parts[1:] {
		head, body, _ := strings.Cut(p, "\n")
		if i := strings.Index(body, "\n.SH "); i >= 0 {
			body = body[:i]
		}
		out[head] = body
	}
	return out
}

func TestManHasEveryCommandAndFlag(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMan(&b, "1.2.3", "2025-01-02"); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, sec := range []string{".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH COMMANDS", ".SH FILES", `.SH "EXIT STATUS"`, `.SH "SEE ALSO"`} {
		if !strings.Contains(page, "\n"+sec+"\n") {
			t.Errorf("man page has no %s", sec)
		}
	}
	if title := strings.SplitN(page, "\n", 3)[1]; !strings.HasPrefix(title, `.TH WGBIRD 8 "2025-01-02" "wgbird 1.2.3"`) {
		t.Errorf("title line %q lacks date and version", title)
	}

	sections := manSections(page)
	var gotCommands, wantCommands []string
	for head := range sections {
		name := strings.Fields(strings.Trim(head, `"`))[1]
		gotCommands = append(gotCommands, name)
	}
	for _, c := range Commands() {
		wantCommands = append(wantCommands, c.Name)
		var body string
		for head, b := range sections {
			if strings.HasPrefix(head, `"wgbird `+c.Name+` `) || head == `"wgbird `+c.Name+`"` {
				body = b
			}
		}
		if body == "" {
			t.Errorf("man page has no subsection for %q", c.Name)
			continue
		}
		if syn := roffText(sentence(c.Synopsis)); !strings.Contains(body, syn) {
			t.Errorf("%s: man page lacks the synopsis %q", c.Name, syn)
		}
		if c.Help != "" {
			first := roffText(strings.Split(strings.TrimSpace(c.Help), "\n")[0])
			if !strings.Contains(body, first) {
				t.Errorf("%s: man page lacks the help's first line %q", c.Name, first)
			}
		}
		for _, f := range flagDocs(c) {
			if !regexp.MustCompile(`(?m)^\.BI? "\\-\\-` + regexp.QuoteMeta(f.Name) + `"`).MatchString(body) {
				t.Errorf("%s: man page lacks flag --%s", c.Name, f.Name)
			}
		}
	}
	if diff := cmp.Diff(sortedCopy(wantCommands), sortedCopy(gotCommands)); diff != "" {
		t.Errorf("commands in the man page (-want +got):\n%s", diff)
	}
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func TestRoffText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text", "plain text"},
		{"use --wait or -h", `use \-\-wait or \-h`},
		{"health-check stays a hyphen", "health-check stays a hyphen"},
		{".starts with a dot", `\&.starts with a dot`},
		{"'starts with a quote", `\&'starts with a quote`},
		{`a \ backslash`, `a \e backslash`},
		{"(--persist) and --x=-1", `(\-\-persist) and \-\-x=\-1`},
		{"trailing space  ", "trailing space"},
	} {
		if got := roffText(tc.in); got != tc.want {
			t.Errorf("roffText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got, want := roffQuote(`say "hi"`), `"say \(dqhi\(dq"`; got != want {
		t.Errorf("roffQuote = %q, want %q", got, want)
	}
}

func TestWriteRoffParagraphs(t *testing.T) {
	var b bytes.Buffer
	writeRoffParagraphs(&b, "First paragraph,\ntwo lines.\n\nBefore an example:\n\n    wgbird drain --wait && reboot\n    .dot\nAfter it.")
	want := `.PP
First paragraph,
two lines.
.PP
Before an example:
.PP
.RS 4
.nf
wgbird drain \-\-wait && reboot
\&.dot
.fi
.RE
.PP
After it.
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("roff (-want +got):\n%s", diff)
	}
}

func TestArgChoices(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"bash|zsh", []string{"bash", "zsh"}},
		{"[SERVICE...]", nil},
		{"SERVICE", nil},
		{"", nil},
		{"[bash]", nil},
	} {
		if diff := cmp.Diff(tc.want, argChoices(tc.in)); diff != "" {
			t.Errorf("argChoices(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}
