package birdlint

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// ConfProtocol is a protocol or template as bird.conf declares it.
type ConfProtocol struct {
	Type     string // "static", "bgp"
	Name     string
	Template bool
	From     string // template it derives from; "" if none
	// Disabled is the block's own `disabled` switch: nil when the block
	// does not set it (then its template's applies).
	Disabled *bool
	// DisabledUnknown: `disabled` is set to something this reader cannot
	// evaluate (a constant defined elsewhere).
	DisabledUnknown bool
	File            string
	Line            int
}

// Conf is what wgbird reads from bird.conf: its protocols and templates.
type Conf struct {
	Files     []string // every file read, the main one first
	Protocols map[string]ConfProtocol
	Templates map[string]ConfProtocol
	// Defines are the `define NAME = VALUE;` constants whose value is a
	// plain number or bool word.
	Defines map[string]string
}

// ReadFile reads one file for ReadConf; Glob expands an include pattern.
// Both take the paths as bird.conf writes them (made absolute).
type (
	ReadFile func(path string) ([]byte, error)
	Glob     func(pattern string) ([]string, error)
)

// maxIncludeDepth stops include loops; BIRD itself allows 8 levels.
// maxFiles bounds the files read in all, against a file including itself
// many times over.
const (
	maxIncludeDepth = 8
	maxFiles        = 1000
)

// ReadConf reads the BIRD configuration at main, following `include`
// directives (relative to the including file's directory, with globs, as
// BIRD does), and collects its protocol and template blocks. It does no
// I/O of its own.
func ReadConf(main string, read ReadFile, glob Glob) (*Conf, error) {
	c := &Conf{Protocols: map[string]ConfProtocol{}, Templates: map[string]ConfProtocol{}, Defines: map[string]string{}}
	var toks []token
	var load func(file string, depth int) error
	load = func(file string, depth int) error {
		if depth > maxIncludeDepth {
			return fmt.Errorf("%s: includes nested deeper than %d", file, maxIncludeDepth)
		}
		if len(c.Files) >= maxFiles {
			return fmt.Errorf("%s: more than %d files included", file, maxFiles)
		}
		data, err := read(file)
		if err != nil {
			return fmt.Errorf("reading BIRD config: %w", err)
		}
		c.Files = append(c.Files, file)
		ts, err := lex(file, string(data))
		if err != nil {
			return err
		}
		for i := 0; i < len(ts); i++ {
			t := ts[i]
			if t.kind != tWord || t.text != "include" || i+2 >= len(ts) || ts[i+1].kind != tString || ts[i+2].text != ";" {
				toks = append(toks, t)
				continue
			}
			pattern := ts[i+1].text
			if !path.IsAbs(pattern) {
				pattern = path.Join(path.Dir(file), pattern)
			}
			files, err := glob(pattern)
			if err != nil {
				return fmt.Errorf("%s:%d: include %q: %w", file, t.line, ts[i+1].text, err)
			}
			for _, f := range files {
				if err := load(f, depth+1); err != nil {
					return err
				}
			}
			i += 2
		}
		return nil
	}
	if err := load(main, 0); err != nil {
		return nil, err
	}
	parseBlocks(c, toks)
	return c, nil
}

// parseBlocks finds `protocol TYPE [NAME] [from TEMPLATE] {` and
// `template TYPE NAME [from TEMPLATE] {` at the top level and reads the
// `disabled` switch of each block.
func parseBlocks(c *Conf, ts []token) {
	depth := 0
	stmtStart := true // the next token starts a statement
	for i := 0; i < len(ts); i++ {
		t := ts[i]
		if depth == 0 && stmtStart && t.kind == tWord && t.text == "define" && i+4 < len(ts) &&
			ts[i+1].kind == tWord && ts[i+2].text == "=" && ts[i+4].text == ";" {
			c.Defines[ts[i+1].text] = ts[i+3].text
		}
		if depth == 0 && stmtStart && t.kind == tWord && (t.text == "protocol" || t.text == "template") {
			end, p, ok := parseHeader(ts, i)
			if ok {
				closeAt := readBlock(ts, end, &p, c.Defines)
				if p.Template {
					c.Templates[p.Name] = p
				} else if p.Name != "" {
					if _, dup := c.Protocols[p.Name]; !dup {
						c.Protocols[p.Name] = p
					}
				}
				i = closeAt
				stmtStart = true
				continue
			}
		}
		switch t.text {
		case "{":
			depth++
			stmtStart = true
		case "}":
			depth = max(depth-1, 0)
			stmtStart = true
		case ";":
			stmtStart = true
		default:
			stmtStart = false
		}
	}
}

// parseHeader reads a block header starting at ts[i] and returns the index
// of its "{".
func parseHeader(ts []token, i int) (int, ConfProtocol, bool) {
	p := ConfProtocol{Template: ts[i].text == "template", File: ts[i].file, Line: ts[i].line}
	j := i + 1
	if j >= len(ts) || ts[j].kind != tWord {
		return 0, p, false
	}
	p.Type = ts[j].text
	j++
	if j < len(ts) && (ts[j].kind == tWord || ts[j].kind == tSymbol) && ts[j].text != "from" {
		p.Name = ts[j].text
		j++
	}
	if j+1 < len(ts) && ts[j].kind == tWord && ts[j].text == "from" {
		p.From = ts[j+1].text
		j += 2
	}
	if j >= len(ts) || ts[j].text != "{" {
		return 0, p, false
	}
	return j, p, true
}

// readBlock reads the block whose "{" is at ts[open] and returns the index
// of its closing "}" (or the last token).
func readBlock(ts []token, open int, p *ConfProtocol, defines map[string]string) int {
	depth := 0
	stmtStart := false
	for i := open; i < len(ts); i++ {
		t := ts[i]
		switch t.text {
		case "{":
			depth++
			stmtStart = true
			continue
		case "}":
			depth--
			stmtStart = true
			if depth == 0 {
				return i
			}
			continue
		case ";":
			stmtStart = true
			continue
		}
		if depth == 1 && stmtStart && t.kind == tWord && t.text == "disabled" && i+1 < len(ts) {
			v, known := switchValue(ts[i+1], defines)
			if known {
				p.Disabled, p.DisabledUnknown = &v, false
			} else {
				p.Disabled, p.DisabledUnknown = nil, true
			}
		}
		stmtStart = false
	}
	return len(ts) - 1
}

// switchValue reads BIRD's bool switch after a keyword: nothing (";"),
// yes/on/true, no/off/false, a number (non-zero is true), or a constant
// defined as one of those.
func switchValue(t token, defines map[string]string) (value, known bool) {
	if t.text == ";" {
		return true, true
	}
	text := t.text
	if v, ok := defines[text]; ok && t.kind == tWord {
		text = v
	}
	switch strings.ToLower(text) {
	case "yes", "on", "true":
		return true, true
	case "no", "off", "false":
		return false, true
	}
	if n, err := strconv.Atoi(text); err == nil {
		return n != 0, true
	}
	return false, false
}

// BootDisabled reports whether the named protocol starts disabled when BIRD
// starts or reconfigures: its own `disabled`, else its templates'. known
// is false when bird.conf has no such protocol or sets `disabled` to a
// value this reader cannot evaluate.
func (c *Conf) BootDisabled(name string) (disabled, known bool, p ConfProtocol) {
	p, ok := c.Protocols[name]
	if !ok {
		return false, false, p
	}
	cur := p
	for range maxIncludeDepth * 4 {
		if cur.DisabledUnknown {
			return false, false, p
		}
		if cur.Disabled != nil {
			return *cur.Disabled, true, p
		}
		if cur.From == "" {
			return false, true, p
		}
		t, ok := c.Templates[cur.From]
		if !ok {
			return false, false, p
		}
		cur = t
	}
	return false, false, p // a template loop; BIRD would refuse it
}

type tokenKind int

const (
	tWord   tokenKind = iota // identifiers and keywords
	tSymbol                  // 'quoted symbol'
	tString                  // "string"
	tPunct                   // one character: { } ; and the rest
	tOther                   // numbers, addresses, operators
)

type token struct {
	kind tokenKind
	text string
	file string
	line int
}

// lex splits BIRD config text into the tokens parseBlocks needs: words,
// quoted strings and symbols, braces and semicolons. Comments (# to the end
// of the line, /* to */) are dropped; everything else becomes tOther.
func lex(file, s string) ([]token, error) {
	var out []token
	line := 1
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("%s:%d: unterminated comment", file, line)
			}
			line += strings.Count(s[i:i+2+end], "\n")
			i += end + 4
		case c == '"' || c == '\'':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return nil, fmt.Errorf("%s:%d: unterminated %c", file, line, c)
			}
			kind := tString
			if c == '\'' {
				kind = tSymbol
			}
			text := s[i+1 : i+1+end]
			out = append(out, token{kind: kind, text: text, file: file, line: line})
			line += strings.Count(text, "\n")
			i += end + 2
		case isWordStart(c):
			j := i
			for j < len(s) && isWordChar(s[j]) {
				j++
			}
			out = append(out, token{kind: tWord, text: s[i:j], file: file, line: line})
			i = j
		case c == '{' || c == '}' || c == ';':
			out = append(out, token{kind: tPunct, text: string(c), file: file, line: line})
			i++
		default:
			j := i + 1
			for j < len(s) && !strings.ContainsRune(" \t\r\n{};#\"'", rune(s[j])) && !isWordStart(s[j]) {
				j++
			}
			out = append(out, token{kind: tOther, text: s[i:j], file: file, line: line})
			i = j
		}
	}
	return out, nil
}

func isWordStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isWordChar(c byte) bool { return isWordStart(c) || c >= '0' && c <= '9' }
