package execcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
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

// maxOutput bounds how much of a command's output is kept.
const maxOutput = 4096

// Outcome is how one run of a command ended.
type Outcome struct {
	// Output is the start of its combined stdout and stderr.
	Output string
	// Err is nil for exit status 0; an *exec.ExitError for another exit
	// status; otherwise why it could not run.
	Err error
	// Started is false when the command could not be started.
	Started bool
	// TimedOut is set when the timeout (or ctx) ended it; its process
	// group was killed.
	TimedOut bool
	Took     time.Duration
}

// Exec runs argv with env added to wgbird's environment, in a process group
// of its own. At timeout, or when ctx ends, the whole group is killed, and
// after the command exits anything left in its group is killed too, so a
// command that forks cannot leave children behind.
func Exec(ctx context.Context, argv, env []string, timeout time.Duration) Outcome {
	if len(argv) == 0 || argv[0] == "" {
		return Outcome{Err: errors.New("no command")}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := exec.Command(argv[0], argv[1:]...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	var out limitedBuffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Without WaitDelay, a grandchild holding the output pipe would keep
	// Wait blocked after the group has been killed.
	cmd.WaitDelay = 100 * time.Millisecond

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Outcome{Err: err}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	o := Outcome{Started: true}
	select {
	case o.Err = <-done:
	case <-ctx.Done():
		// Negative pid: the whole process group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		o.Err = <-done
		o.TimedOut = true
	}
	// The leader exited; anything it left in its group goes too.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	o.Took = time.Since(start)
	o.Output = out.String()
	return o
}

// Run runs the check's command once and reports exit status 0 as healthy.
func Run(ctx context.Context, s Spec) health.Check {
	c := health.Check{Name: "exec:" + s.Name}
	if len(s.Command) == 0 || s.Command[0] == "" {
		c.Detail = "no command"
		return c
	}
	o := Exec(ctx, s.Command, nil, s.Timeout)
	c.Took = o.Took
	var exitErr *exec.ExitError
	switch {
	case !o.Started:
		c.Detail = fmt.Sprintf("starting %s: %v", s.Command[0], o.Err)
		return c
	case o.TimedOut:
		c.Detail = fmt.Sprintf("%s timed out after %s, process group killed", s.Command[0], s.Timeout)
		return c
	case o.Err == nil:
		c.OK = true
		c.Detail = fmt.Sprintf("%s exited 0 in %s", s.Command[0], o.Took.Round(time.Millisecond))
		return c
	case errors.As(o.Err, &exitErr):
		c.Detail = fmt.Sprintf("%s exited %d", s.Command[0], exitErr.ExitCode())
	default:
		c.Detail = fmt.Sprintf("%s: %v", s.Command[0], o.Err)
	}
	if msg := strings.TrimSpace(o.Output); msg != "" {
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
// the rest, so a chatty command cannot grow wgbird's memory.
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
