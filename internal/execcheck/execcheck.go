package execcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/wgbird/wgbird/internal/health"
)

// Spec describes one exec check.
type Spec struct {
	Name    string
	Command []string
	Timeout time.Duration
}

// maxOutput bounds how much of the command's output is kept for the detail.
const maxOutput = 4096

// Run runs the command once and reports exit status 0 as healthy. The
// command runs in its own process group; on timeout (or when ctx ends) the
// whole group is killed, so a check that forks cannot leave children behind.
func Run(ctx context.Context, s Spec) health.Check {
	c := health.Check{Name: "exec:" + s.Name}
	if len(s.Command) == 0 || s.Command[0] == "" {
		c.Detail = "no command"
		return c
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()

	cmd := exec.Command(s.Command[0], s.Command[1:]...)
	var out limitedBuffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Without WaitDelay, a grandchild holding the output pipe would keep
	// Wait blocked after the group has been killed.
	cmd.WaitDelay = 100 * time.Millisecond

	start := time.Now()
	if err := cmd.Start(); err != nil {
		c.Detail = fmt.Sprintf("starting %s: %v", s.Command[0], err)
		return c
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		// Negative pid: the whole process group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		c.Detail = fmt.Sprintf("%s timed out after %s, process group killed", s.Command[0], s.Timeout)
		return c
	}
	// The leader exited; anything it left in its group goes too.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)

	took := time.Since(start).Round(time.Millisecond)
	msg := strings.TrimSpace(out.String())
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		c.OK = true
		c.Detail = fmt.Sprintf("%s exited 0 in %s", s.Command[0], took)
	case errors.As(err, &exitErr):
		c.Detail = fmt.Sprintf("%s exited %d", s.Command[0], exitErr.ExitCode())
	default:
		c.Detail = fmt.Sprintf("%s: %v", s.Command[0], err)
	}
	if !c.OK && msg != "" {
		c.Detail += ": " + firstLine(msg)
	}
	return c
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// limitedBuffer keeps the first maxOutput bytes written to it and discards
// the rest, so a chatty check cannot grow wgbird's memory.
type limitedBuffer struct{ b bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxOutput - l.b.Len(); room > 0 {
		if len(p) > room {
			l.b.Write(p[:room])
		} else {
			l.b.Write(p)
		}
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return l.b.String() }
