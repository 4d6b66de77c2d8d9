package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// positionMap records the line and the TOML type of every key of a
// document, by the path errors name it with: "bird.socket",
// "service[2].exec[1].command[1]".
type positionMap struct {
	lines   map[string]int // path → line of its first appearance
	entries []entry        // every appearance, in document order
}

type entry struct {
	path string
	line int
	kind string // "string", "integer", "table", "array", ...
}

// kind returns the TOML type of path's value, "" when unknown.
func (m *positionMap) kind(path string) string {
	for _, e := range m.entries {
		if e.path == path && e.kind != "" {
			return e.kind
		}
	}
	return ""
}

// parseError is a syntax error found while walking the document.
type parseError struct {
	line int
	msg  string
}

// line returns the line of path, or of its nearest ancestor that has one
// (a missing key is reported at its table), or 0.
func (m *positionMap) line(path string) int {
	for path != "" {
		if l, ok := m.lines[path]; ok {
			return l
		}
		path = parent(path)
	}
	return 0
}

// keyAt finds the full path of a key go-toml reported at line: go-toml's
// key has no array indices and may be relative to its table.
func (m *positionMap) keyAt(line int, key []string) string {
	parts := make([]string, len(key))
	for i, k := range key {
		parts[i] = keyPart(k)
	}
	rel := strings.Join(parts, ".")
	first := ""
	for _, e := range m.entries {
		if e.line != line {
			continue
		}
		s := stripIndices(e.path)
		if s == rel || strings.HasSuffix(s, "."+rel) {
			return e.path
		}
		if first == "" {
			first = e.path
		}
	}
	if first != "" {
		return first
	}
	return rel
}

// parent returns the path without its last component: "a.b" → "a",
// "a[2]" → "a", "a" → "".
func parent(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	// The last component may be a quoted key containing dots.
	if strings.HasSuffix(path, `"`) {
		if i := lastQuoteStart(path); i > 0 && path[i-1] == '.' {
			return path[:i-1]
		} else if i == 0 {
			return ""
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// lastQuoteStart returns the index of the quote opening the quoted key that
// ends path, or -1.
func lastQuoteStart(path string) int {
	for i := len(path) - 2; i >= 0; i-- {
		if path[i] != '"' {
			continue
		}
		// Count the backslashes before it: an even number means the quote
		// is not escaped.
		n := 0
		for j := i - 1; j >= 0 && path[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return i
		}
	}
	return -1
}

// stripIndices removes the array indices of a path: "service[2].exec[1].x"
// → "service.exec.x".
func stripIndices(path string) string {
	if !strings.Contains(path, "[") {
		return path
	}
	var b strings.Builder
	inQuote, inIndex := false, false
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case inQuote:
			b.WriteByte(c)
			if c == '\\' && i+1 < len(path) {
				i++
				b.WriteByte(path[i])
			} else if c == '"' {
				inQuote = false
			}
		case inIndex:
			if c == ']' {
				inIndex = false
			}
		case c == '"':
			inQuote = true
			b.WriteByte(c)
		case c == '[':
			inIndex = true
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// keyPart formats one key as written in a path: bare keys as they are, any
// other key quoted.
func keyPart(k string) string {
	if k == "" {
		return `""`
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Sprintf("%q", k)
		}
	}
	return k
}

func join(path, key string) string {
	if path == "" {
		return keyPart(key)
	}
	return path + "." + keyPart(key)
}

func index(path string, i int) string {
	return fmt.Sprintf("%s[%d]", path, i+1)
}

// walker builds a positionMap from unstable.Parser's expressions, tracking
// the running index of every array of tables.
type walker struct {
	m        *positionMap
	newlines []int // offsets of '\n'
	arrays   map[string]int
	table    string // path of the current table
	depth    int    // components in table: "service[1]" is 2
}

// maxDepth bounds the components of a recorded path. The deepest key the
// schema knows is service[i].exec[j].command[k] (6); a document nesting
// values deeper is refused at a shallower key, and not walking it keeps a
// deeply nested document from costing quadratic time and memory.
const maxDepth = 8

// positions walks the document. On a syntax error it returns what it saw so
// far and the error.
func positions(data []byte) (*positionMap, *parseError) {
	w := &walker{
		m:      &positionMap{lines: map[string]int{}},
		arrays: map[string]int{},
	}
	for i, c := range data {
		if c == '\n' {
			w.newlines = append(w.newlines, i)
		}
	}
	var p unstable.Parser
	p.Reset(data)
	for p.NextExpression() {
		w.expression(p.Expression())
	}
	if err := p.Error(); err != nil {
		pe := &parseError{msg: err.Error()}
		var perr *unstable.ParserError
		if errors.As(err, &perr) {
			pe.line = w.highlightLine(data, perr.Highlight)
		}
		return w.m, pe
	}
	return w.m, nil
}

// lineOf returns the 1-based line of a byte offset.
func (w *walker) lineOf(offset int) int {
	return sort.SearchInts(w.newlines, offset) + 1
}

func (w *walker) highlightLine(data, h []byte) int {
	off := cap(data) - cap(h)
	if h == nil || off < 0 || off > len(data) {
		return 0
	}
	return w.lineOf(off)
}

func (w *walker) record(path string, line int, kind string) {
	w.m.entries = append(w.m.entries, entry{path, line, kind})
	if _, ok := w.m.lines[path]; !ok {
		w.m.lines[path] = line
	}
}

func (w *walker) nodeLine(n *unstable.Node, fallback int) int {
	if n.Raw.Length > 0 {
		return w.lineOf(int(n.Raw.Offset))
	}
	// Arrays carry no range: use their first element's line.
	if n.Kind == unstable.Array {
		if c := n.Child(); c.Valid() && c.Kind != unstable.Comment {
			return w.nodeLine(c, fallback)
		}
	}
	return fallback
}

func (w *walker) expression(n *unstable.Node) {
	switch n.Kind {
	case unstable.Table, unstable.ArrayTable:
		it := n.Key()
		var parts []*unstable.Node
		for it.Next() {
			parts = append(parts, it.Node())
		}
		if len(parts) == 0 {
			return
		}
		line := w.lineOf(int(parts[0].Raw.Offset))
		path := ""
		w.depth = 0
		for i, k := range parts {
			if w.depth += 1; w.depth > maxDepth {
				break
			}
			path = join(path, string(k.Data))
			last := i == len(parts)-1
			if last && n.Kind == unstable.ArrayTable {
				w.arrays[path]++
				w.record(path, line, "array")
				path = index(path, w.arrays[path]-1)
				w.depth++
			} else if c := w.arrays[path]; c > 0 {
				// A table inside an array of tables belongs to its
				// latest element.
				path = index(path, c-1)
				w.depth++
			}
			w.record(path, line, "table")
		}
		w.table = path
	case unstable.KeyValue:
		w.keyValue(w.table, n, w.depth)
	}
}

// keyValue records a (possibly dotted) key and its value under base.
func (w *walker) keyValue(base string, n *unstable.Node, depth int) {
	it := n.Key()
	path := base
	line := 0
	for it.Next() {
		if depth++; depth > maxDepth {
			return
		}
		k := it.Node()
		if line == 0 {
			line = w.lineOf(int(k.Raw.Offset))
		}
		path = join(path, string(k.Data))
		kind := "table" // a dotted key's parent
		if it.IsLast() {
			kind = kinds[n.Value().Kind]
		}
		w.record(path, line, kind)
	}
	w.value(path, n.Value(), line, depth)
}

// kinds names the TOML type of a value node.
var kinds = map[unstable.Kind]string{
	unstable.String: "string", unstable.Integer: "integer", unstable.Float: "float", unstable.Bool: "boolean",
	unstable.LocalDate: "date", unstable.LocalTime: "time", unstable.LocalDateTime: "datetime", unstable.DateTime: "datetime",
	unstable.Array: "array", unstable.InlineTable: "table",
}

func (w *walker) value(path string, v *unstable.Node, line, depth int) {
	if depth >= maxDepth {
		return
	}
	switch v.Kind {
	case unstable.Array:
		i := 0
		for it := v.Children(); it.Next(); {
			c := it.Node()
			if c.Kind == unstable.Comment {
				continue
			}
			p := index(path, i)
			l := w.nodeLine(c, line)
			w.record(p, l, kinds[c.Kind])
			w.value(p, c, l, depth+1)
			i++
		}
	case unstable.InlineTable:
		for it := v.Children(); it.Next(); {
			if c := it.Node(); c.Kind == unstable.KeyValue {
				w.keyValue(path, c, depth)
			}
		}
	}
}
