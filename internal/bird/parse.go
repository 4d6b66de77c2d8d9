package bird

import (
	"errors"
	"fmt"
	"strings"
)

// Line is one line of a BIRD reply.
type Line struct {
	// Code is the four-digit reply code, or 0 for a line that began with a
	// space and so continues the block of the previous code. BIRD never sends
	// "0000-", so Code 0 with Continued true always means such a line.
	Code int
	// Continued reports whether more lines of the same reply follow: true for
	// "DDDD-text" and " text" lines, false for the final "DDDD text" line.
	Continued bool
	// Text is the line without its code, separator and newline.
	Text string
}

// Reply is one complete reply of BIRD to one command.
type Reply struct {
	// Code is the code of the final line.
	Code  int
	Lines []Line
}

// Class is the kind of a reply code: its first digit, as BIRD's
// doc/reply_codes defines it. Codes are classified by class, never by a
// list of known codes, because every BIRD release adds some (1026 "Show
// MPLS ranges", 8009 "Failed to open file" and 9003 "Argument too long"
// came after 2.0.12).
type Class int

// The classes BIRD defines. 3xxx to 7xxx are unused.
const (
	ClassOK           Class = 0 // 0xxx: action completed (0003 Reconfigured, 0004 Reconfiguration in progress, 0011 Enabled)
	ClassEntry        Class = 1 // 1xxx: table entry
	ClassHeading      Class = 2 // 2xxx: table heading
	ClassRuntimeError Class = 8 // 8xxx: run-time error
	ClassParseError   Class = 9 // 9xxx: parse error
)

// ClassOf returns the class of a reply code (0-9999).
func ClassOf(code int) Class { return Class(code / 1000) }

// Failed reports whether codes of class c are errors: run-time and parse
// errors, and the classes BIRD does not use, which a reply from a future
// BIRD could carry and wgbird cannot take for success.
func (c Class) Failed() bool { return c != ClassOK && c != ClassEntry && c != ClassHeading }

// ReplyError is a reply with an error code: class 8 (run-time error), 9
// (parse error) or one BIRD does not define.
type ReplyError struct {
	Code int
	Text string
}

func (e *ReplyError) Error() string {
	return fmt.Sprintf("bird replied %04d: %s", e.Code, e.Text)
}

// Err returns a *ReplyError for the first line whose code's class Failed,
// nil otherwise. Continuation lines (" text", Code 0) belong to the line
// they continue.
func (r Reply) Err() error {
	for _, l := range r.Lines {
		if ClassOf(l.Code).Failed() {
			return &ReplyError{Code: l.Code, Text: l.Text}
		}
	}
	return nil
}

// errIncomplete marks input that ends before the final line of a reply: the
// caller has to read more or, when nothing more will come, treat the
// connection as out of step.
var errIncomplete = errors.New("incomplete reply")

// ParseReply parses exactly one complete BIRD reply: zero or more lines
// "DDDD-text" or " text", then one final line "DDDD text", every line ended by
// a newline. Input without a final line, with anything after it, or with a
// line of another form (such as BIRD's asynchronous "+text", which it sends
// only after `echo`) is an error.
func ParseReply(b []byte) (Reply, error) {
	if len(b) == 0 {
		return Reply{}, fmt.Errorf("%w: empty", errIncomplete)
	}
	s := string(b)
	r := Reply{Lines: make([]Line, 0, strings.Count(s, "\n"))}
	for n := 1; ; n++ {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			return Reply{}, fmt.Errorf("%w: line %d %s has no newline", errIncomplete, n, quoteShort(s))
		}
		text := s[:i]
		s = s[i+1:]
		if text != "" && text[0] == ' ' {
			if n == 1 {
				return Reply{}, fmt.Errorf("malformed reply: line 1 %s continues no code", quoteShort(text))
			}
			r.Lines = append(r.Lines, Line{Code: 0, Continued: true, Text: text[1:]})
			continue
		}
		code, ok := parseCode(text)
		if !ok || (text[4] != '-' && text[4] != ' ') {
			return Reply{}, fmt.Errorf("malformed reply: line %d %s is not \"DDDD-text\", \"DDDD text\" or \" text\"", n, quoteShort(text))
		}
		if text[4] == '-' {
			if code == 0 {
				// BIRD continues only nonzero codes; " text" lines carry
				// Code 0, so "0000-" would read the same as one.
				return Reply{}, fmt.Errorf("malformed reply: line %d %s: code 0000 cannot continue", n, quoteShort(text))
			}
			r.Lines = append(r.Lines, Line{Code: code, Continued: true, Text: text[5:]})
			continue
		}
		r.Lines = append(r.Lines, Line{Code: code, Text: text[5:]})
		r.Code = code
		if s != "" {
			return Reply{}, fmt.Errorf("malformed reply: %d bytes after the final line %d: %s", len(s), n, quoteShort(s))
		}
		return r, nil
	}
}

// parseCode reads the four digits at the start of a line that is at least
// five bytes long.
func parseCode(text string) (int, bool) {
	if len(text) < 5 {
		return 0, false
	}
	code := 0
	for _, c := range []byte(text[:4]) {
		if c < '0' || c > '9' {
			return 0, false
		}
		code = code*10 + int(c-'0')
	}
	return code, true
}

// quoteShort quotes s for an error message, cut to a readable length.
func quoteShort(s string) string {
	const max = 60
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

// Protocol is one row of `show protocols`.
type Protocol struct {
	Name  string
	Proto string
	Table string
	State string
	Since string
	Info  string
}

// Enabled reports whether the protocol is enabled and announcing or coming
// up: "up" or "start". BIRD shows a protocol disabled by configuration or
// by the CLI as "down", and one on its way down as "stop" and then "flush"
// (both 2.x and 3.x show "flush" for a moment right after `disable`, while
// its routes are withdrawn). A protocol restarting (after `configure`
// changed it) passes through the same states and comes back by itself;
// enabling it meanwhile is harmless ("already enabled").
func (p Protocol) Enabled() bool { return p.State == "up" || p.State == "start" }

// Reply codes of `show protocols` (and `show protocols all`).
const (
	codeProtocolsHeader = 2002
	codeProtocolRow     = 1002
)

// ParseProtocols reads the protocols from the reply to `show protocols` or
// `show protocols all` (whose detail blocks, code 1006, it skips). An error
// reply gives its *ReplyError.
//
// BIRD prints each row as "%-10s %-10s %-10s %-5s  %-12s  %s": names longer
// than ten characters shift the later columns, so the first four columns are
// read as words. Since is a time in the configured `timeformat protocol`,
// which may contain spaces ("2026-11-25 17:28:23" with "iso long"): it starts
// where the format puts it and ends at the first double space at or after its
// twelfth character; the rest is Info. Only a time format producing a double
// space past its twelfth character could move text between Since and Info.
func ParseProtocols(r Reply) ([]Protocol, error) {
	if err := r.Err(); err != nil {
		return nil, err
	}
	header := false
	protos := make([]Protocol, 0, len(r.Lines))
	block := 0 // code of the current block, inherited by " text" lines
	for i, l := range r.Lines {
		if l.Code != 0 || !l.Continued {
			block = l.Code
		}
		switch {
		case block == codeProtocolsHeader:
			if f := strings.Fields(l.Text); header || len(f) == 0 || !strings.EqualFold(f[0], "Name") {
				return nil, fmt.Errorf("parsing show protocols: line %d: unexpected header %q", i+1, l.Text)
			}
			header = true
		case block == codeProtocolRow:
			if !header {
				return nil, fmt.Errorf("parsing show protocols: line %d: row before the header", i+1)
			}
			p, err := parseProtocolRow(l.Text)
			if err != nil {
				return nil, fmt.Errorf("parsing show protocols: line %d: %w", i+1, err)
			}
			protos = append(protos, p)
		}
	}
	if !header {
		return nil, fmt.Errorf("parsing show protocols: no header (code %d): not a reply to show protocols", codeProtocolsHeader)
	}
	return protos, nil
}

// parseProtocolRow parses the text of one row of `show protocols`.
func parseProtocolRow(text string) (Protocol, error) {
	var words [4]string
	pos := 0
	stateStart := 0
	for i := range words {
		for pos < len(text) && text[pos] == ' ' {
			pos++
		}
		start := pos
		for pos < len(text) && text[pos] != ' ' {
			pos++
		}
		if start == pos {
			return Protocol{}, fmt.Errorf("row %q has fewer than 5 columns", text)
		}
		words[i] = text[start:pos]
		stateStart = start
	}
	// Since begins where "%-5s  " puts it, unless the row is laid out
	// differently: then at the next word.
	// Since is then padded to sinceWidth; in another layout, it ends at the
	// first double space.
	sinceStart := stateStart + max(len(words[3]), 5) + 2
	sinceWidth := 12
	if sinceStart > len(text) || strings.TrimLeft(text[pos:sinceStart], " ") != "" {
		sinceStart, sinceWidth = pos, 0
		for sinceStart < len(text) && text[sinceStart] == ' ' {
			sinceStart++
		}
	}
	rest := text[sinceStart:]
	since, info := rest, ""
	if sinceWidth < len(rest) {
		if j := strings.Index(rest[sinceWidth:], "  "); j >= 0 {
			since, info = rest[:sinceWidth+j], rest[sinceWidth+j:]
		}
	}
	since = strings.TrimSpace(since)
	if since == "" {
		return Protocol{}, fmt.Errorf("row %q has fewer than 5 columns", text)
	}
	return Protocol{
		Name:  words[0],
		Proto: words[1],
		Table: words[2],
		State: words[3],
		Since: since,
		Info:  strings.TrimSpace(info),
	}, nil
}

// ValidSymbol reports whether name is a BIRD symbol as a protocol name must
// be: a letter or underscore, then letters, digits or underscores, at most
// 64 bytes. Names failing it are never sent to BIRD.
func ValidSymbol(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i, c := range []byte(name) {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
