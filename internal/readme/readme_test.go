package readme

import "testing"

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
