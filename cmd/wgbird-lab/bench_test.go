package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBenchArgs(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{args: []string{"bench", "--help"}, code: 0, stdout: "usage: wgbird-lab bench"},
		{args: []string{"bench", "extra"}, code: 2, stderr: "takes no arguments"},
		{args: []string{"bench", "--series", "wgbird,nope"}, code: 2, stderr: `unknown series "nope"`},
		{args: []string{"bench", "--modes", "bird-restart"}, code: 2, stderr: "not benchmarked"},
		{args: []string{"bench", "--server", "s3"}, code: 2, stderr: `unknown server "s3"`},
		{args: []string{"bench", "--reps", "0"}, code: 2, stderr: "must be positive"},
		{args: []string{"bench", "--wgbird="}, code: 2, stderr: "needs wgbird"},
		{args: []string{"bench", "--go-bench", "/nonexistent/bench.txt"}, code: 1, stderr: "/nonexistent/bench.txt"},
		{args: []string{"help"}, code: 0, stdout: "bench              measure failover"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		code := run(tt.args, &out, &errb)
		if code != tt.code || !strings.Contains(out.String(), tt.stdout) || !strings.Contains(errb.String(), tt.stderr) {
			t.Errorf("run(%q) = %d\nstdout: %s\nstderr: %s\nwant %d, stdout with %q, stderr with %q",
				tt.args, code, out.String(), errb.String(), tt.code, tt.stdout, tt.stderr)
		}
	}
}

func TestWriteBlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	if err := os.WriteFile(path, []byte("# x\n\n<!-- bench:start -->\nold\n<!-- bench:end -->\n\n## After\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeBlock(path, "<!-- bench:start -->\nnew\n<!-- bench:end -->\n"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "# x\n\n<!-- bench:start -->\nnew\n<!-- bench:end -->\n\n## After\n"; got != want {
		t.Errorf("README = %q, want %q", got, want)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("%d files left in the directory, want README.md alone", len(entries))
	}
}
