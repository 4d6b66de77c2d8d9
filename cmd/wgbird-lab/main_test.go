package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunArgs(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{args: nil, code: 2, stdout: "usage: wgbird-lab COMMAND"},
		{args: []string{"help"}, code: 0, stdout: "link-delete"},
		{args: []string{"--help"}, code: 0, stdout: "bird-configure"},
		{args: []string{"explode"}, code: 2, stderr: `unknown command "explode"`},
		{args: []string{"status", "--wgbird", "x"}, code: 2, stderr: "--wgbird not accepted by this command"},
		{args: []string{"fail", "s1"}, code: 2, stderr: "want 2 argument(s), got 1"},
		{args: []string{"--wait", "1s", "heal", "s1"}, code: 2, stderr: "--wait not accepted"},
		{args: []string{"up", "--rise", "x"}, code: 2, stderr: "invalid value"},
		{args: []string{"soak", "--help"}, code: 0, stdout: "--cycles N"},
		{args: []string{"soak", "--cycles", "0"}, code: 2, stderr: "--cycles, --settle and --heap-slack must be positive"},
		{args: []string{"soak", "--help"}, code: 0, stdout: "--heap-slack B"},
		{args: []string{"soak", "--cycles", "10", "--warm-up", "11", "--wgbird", "x"}, code: 2, stderr: "--warm-up must be between 0 and --cycles (10)"},
		{args: []string{"soak", "extra"}, code: 2, stderr: "takes no arguments"},
		{args: []string{"soak", "--seed", "x"}, code: 2, stderr: "invalid value"},
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
