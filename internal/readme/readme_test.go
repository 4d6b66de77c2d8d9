package readme

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSection(t *testing.T) {
	const text = "# T\n## A\na1\n### A.1\na11\n## B\nb1\n"
	tests := []struct {
		heading, want string
		err           bool
	}{
		{"## A", "a1\n### A.1\na11", false},
		{"### A.1", "a11", false},
		{"## B", "b1\n", false},
		{"## C", "", true},
		{"nope", "", true},
	}
	for _, tt := range tests {
		got, err := section(text, tt.heading)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("section(%q) = %q, %v; want %q, error %v", tt.heading, got, err, tt.want, tt.err)
		}
	}
}

func TestSectionOfTheRealREADME(t *testing.T) {
	s, err := Section("## Quick start")
	if err != nil || s == "" {
		t.Fatalf("Section(Quick start) = %q, %v", s, err)
	}
}

// TestArchitectureNamesEveryPackage keeps README's architecture section
// true: every package under internal/ is named in it.
func TestArchitectureNamesEveryPackage(t *testing.T) {
	s, err := Section("## Architecture")
	if err != nil {
		t.Fatal(err)
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := os.ReadDir(filepath.Join(root, "internal"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		gofiles, _ := filepath.Glob(filepath.Join(root, "internal", d.Name(), "*.go"))
		if !d.IsDir() || len(gofiles) == 0 {
			continue
		}
		if name := "`internal/" + d.Name() + "`"; !strings.Contains(s, name) {
			t.Errorf("README's Architecture section does not name %s: add it to the list with what it owns", name)
		}
	}
}
