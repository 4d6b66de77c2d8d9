package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPositions(t *testing.T) {
	doc := `top = 1
[bird]
socket = "/x"
[[service]]
interface = "wg0"
vips = [
  "a",

  "b",
]
  [[service.exec]]
  command = ["x"]
  [[service.exec]]
  name = "n"
[[service]]
  [[service.exec]]
  inline = { a.b = 1, "c d" = [{ e = 2 }] }
[service.sub]
x = 1
`
	m, perr := positions([]byte(doc))
	if perr != nil {
		t.Fatalf("positions: %+v", perr)
	}
	want := map[string]int{
		"top":                                  1,
		"bird":                                 2,
		"bird.socket":                          3,
		"service":                              4,
		"service[1]":                           4,
		"service[1].interface":                 5,
		"service[1].vips":                      6,
		"service[1].vips[1]":                   7,
		"service[1].vips[2]":                   9,
		"service[1].exec":                      11,
		"service[1].exec[1]":                   11,
		"service[1].exec[1].command":           12,
		"service[1].exec[1].command[1]":        12,
		"service[1].exec[2]":                   13,
		"service[1].exec[2].name":              14,
		"service[2]":                           15,
		"service[2].exec":                      16,
		"service[2].exec[1]":                   16,
		"service[2].exec[1].inline":            17,
		"service[2].exec[1].inline.a":          17,
		"service[2].exec[1].inline.a.b":        17,
		`service[2].exec[1].inline."c d"`:      17,
		`service[2].exec[1].inline."c d"[1]`:   17,
		`service[2].exec[1].inline."c d"[1].e`: 17,
		"service[2].sub":                       18,
		"service[2].sub.x":                     19,
	}
	if diff := cmp.Diff(want, m.lines); diff != "" {
		t.Errorf("positions mismatch (-want +got):\n%s", diff)
	}
	for path, line := range map[string]int{
		"service[1].exec[2].timeout": 13, // missing: its table's line
		"service[3]":                 4,  // falls back to the array
		"nothing":                    0,
	} {
		if got := m.line(path); got != line {
			t.Errorf("line(%q) = %d, want %d", path, got, line)
		}
	}
	if got, want := m.keyAt(14, []string{"name"}), "service[1].exec[2].name"; got != want {
		t.Errorf("keyAt(14, name) = %q, want %q", got, want)
	}
}

func TestPathHelpers(t *testing.T) {
	tests := []struct{ path, parent, stripped string }{
		{"service[2].exec[1].timeout", "service[2].exec[1]", "service.exec.timeout"},
		{"service[2]", "service", "service"},
		{"bird", "", "bird"},
		{`a."b.c"`, "a", `a."b.c"`},
		{`"b.c"`, "", `"b.c"`},
		{`a."x[1]"[3]`, `a."x[1]"`, `a."x[1]"`},
		{`a."q\"."`, "a", `a."q\"."`},
	}
	for _, tt := range tests {
		if got := parent(tt.path); got != tt.parent {
			t.Errorf("parent(%q) = %q, want %q", tt.path, got, tt.parent)
		}
		if got := stripIndices(tt.path); got != tt.stripped {
			t.Errorf("stripIndices(%q) = %q, want %q", tt.path, got, tt.stripped)
		}
	}
	for k, want := range map[string]string{"socket": "socket", "a b": `"a b"`, "": `""`, "é": `"é"`, "x.y": `"x.y"`} {
		if got := keyPart(k); got != want {
			t.Errorf("keyPart(%q) = %q, want %q", k, got, want)
		}
	}
}

// TestPositionsDeep checks that a deeply nested value is not walked to the
// bottom: that would cost quadratic time and memory in path strings.
func TestPositionsDeep(t *testing.T) {
	for _, doc := range []string{
		"x = " + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "\n",
		"x = " + strings.Repeat("{a=", 5000) + "1" + strings.Repeat("}", 5000) + "\n",
		"[" + strings.Repeat("a.", 5000) + "a]\nb = 1\n",
	} {
		m, perr := positions([]byte(doc))
		if perr != nil {
			t.Fatalf("positions: %+v", perr)
		}
		if len(m.entries) > maxDepth+1 {
			t.Errorf("positions recorded %d entries for %.20q..., want at most %d", len(m.entries), doc, maxDepth+1)
		}
	}
}
