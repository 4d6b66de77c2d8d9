package execcheck

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name   string
		cmd    []string
		ok     bool
		detail string // prefix
	}{
		{"exit 0", []string{"/bin/true"}, true, "/bin/true exited 0"},
		{"exit 1", []string{"/bin/false"}, false, "/bin/false exited 1"},
		{"exit 3 with output", []string{"/bin/sh", "-c", "echo 'dns broken'; exit 3"}, false, "/bin/sh exited 3: dns broken"},
		{"missing binary", []string{"/nonexistent/check"}, false, "starting /nonexistent/check: "},
		{"no command", nil, false, "no command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Run(context.Background(), Spec{Name: "x", Command: tt.cmd, Timeout: 5 * time.Second})
			if c.OK != tt.ok || !strings.HasPrefix(c.Detail, tt.detail) {
				t.Fatalf("Run(%q) = ok %v %q, want ok %v with prefix %q", tt.cmd, c.OK, c.Detail, tt.ok, tt.detail)
			}
			if c.Name != "exec:x" {
				t.Fatalf("Name = %q, want exec:x", c.Name)
			}
		})
	}
}

// TestRunTimeoutKillsGroup proves that a timed-out check's children die with
// it: the command forks a sleeping grandchild and records its pid.
func TestRunTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	script := "sleep 60 & echo $! > " + pidFile + "; wait"
	c := Run(context.Background(), Spec{Name: "slow", Command: []string{"/bin/sh", "-c", script}, Timeout: 300 * time.Millisecond})
	if c.OK || !strings.Contains(c.Detail, "timed out after 300ms, process group killed") {
		t.Fatalf("Run = ok %v %q, want a timeout", c.OK, c.Detail)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("reading grandchild pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("parsing grandchild pid: %v", err)
	}
	// The grandchild was reparented; give init a moment to reap it.
	deadline := time.Now().Add(2 * time.Second)
	for {
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
			return
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("grandchild %d still alive after the check timed out", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLimitedBuffer(t *testing.T) {
	var b limitedBuffer
	n, err := b.Write([]byte(strings.Repeat("x", maxOutput+100)))
	if n != maxOutput+100 || err != nil {
		t.Fatalf("Write = %d, %v; want all bytes accepted", n, err)
	}
	if got := len(b.String()); got != maxOutput {
		t.Fatalf("kept %d bytes, want %d", got, maxOutput)
	}
}
