package hook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wgbird/wgbird/internal/health"
)

// syncBuffer is a log sink safe for the runner's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, opts Options) (*Runner, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	var w io.Writer = logs
	if testing.Verbose() {
		w = io.MultiWriter(logs, os.Stderr)
	}
	opts.Log = slog.New(slog.NewTextHandler(w, nil))
	r, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r, logs
}

func closeWithin(t *testing.T, r *Runner, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	r.Close(ctx)
}

func TestEnvironment(t *testing.T) {
	dir := t.TempDir()
	script := `n=$(ls "$DIR" | wc -l); env | grep ^WGBIRD_ | sort > "$DIR/$n"`
	t.Setenv("DIR", dir)
	r, _ := start(t, Options{Command: []string{"sh", "-c", script}, Timeout: 10 * time.Second})
	r.Transitioned("wg0", health.Transition{From: health.Announced, To: health.Withdrawn, Detail: "link: VIP 192.168.20.1/24 missing on wg0"})
	r.Transitioned("wg1", health.Transition{From: health.Withdrawn, To: health.Announced, Cause: health.CauseRecovered, Count: 3})
	closeWithin(t, r, 20*time.Second)

	var got []string
	for i := range 2 {
		b, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if !strings.HasPrefix(l, "WGBIRD_TIME=") {
				lines = append(lines, l)
			} else if _, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(l, "WGBIRD_TIME=")); err != nil {
				t.Errorf("WGBIRD_TIME: %v", err)
			}
		}
		got = append(got, strings.Join(lines, "\n"))
	}
	want := []string{
		"WGBIRD_FROM=announced\nWGBIRD_REASON=link: VIP 192.168.20.1/24 missing on wg0\nWGBIRD_SERVICE=wg0\nWGBIRD_TO=withdrawn",
		"WGBIRD_FROM=withdrawn\nWGBIRD_REASON=3 healthy in a row\nWGBIRD_SERVICE=wg1\nWGBIRD_TO=announced",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hook environments, in order (-want +got):\n%s", diff)
	}
}

// alive reports whether pid is a live process (not gone, not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// TestTimeoutKillsGroup: a hook that hangs is killed at its timeout with
// everything it started, and the next transition's hook still runs.
func TestTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DIR", dir)
	script := `if [ "$WGBIRD_SERVICE" = hang ]; then sleep 300 & echo $! > "$DIR/child"; echo started; sleep 300; fi; touch "$DIR/$WGBIRD_SERVICE"`
	r, logs := start(t, Options{Command: []string{"sh", "-c", script}, Timeout: 300 * time.Millisecond})
	r.Transitioned("hang", health.Transition{From: health.Announced, To: health.Withdrawn, Detail: "x"})
	r.Transitioned("next", health.Transition{From: health.Withdrawn, To: health.Announced, Detail: "y"})
	closeWithin(t, r, 20*time.Second)

	b, err := os.ReadFile(filepath.Join(dir, "child"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// SIGKILL is delivered at once, but reaping the orphan is up to
	// PID 1: allow it a moment.
	for i := 0; alive(pid) && i < 100; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pid) {
		t.Errorf("the hook's child %d survived the timeout", pid)
	}
	if _, err := os.Stat(filepath.Join(dir, "next")); err != nil {
		t.Errorf("the hook after the killed one did not run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "hang")); err == nil {
		t.Errorf("the hung hook ran to its end")
	}
	if l := logs.String(); !strings.Contains(l, "killed after the 300ms timeout") || !strings.Contains(l, "output=started") {
		t.Errorf("log lacks the kill and the hook's output:\n%s", l)
	}
}

// TestNeverBlocks: with the hook hung and the queue full, Transitioned
// returns at once and the dropped transitions are counted and logged.
func TestNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DIR", dir)
	r, logs := start(t, Options{Command: []string{"sh", "-c", `touch "$DIR/running"; exec sleep 300`}, Timeout: time.Hour, Queue: 2})
	r.Transitioned("wg0", health.Transition{From: health.Announced, To: health.Withdrawn, Detail: "first"})
	for i := 0; ; i++ {
		if _, err := os.Stat(filepath.Join(dir, "running")); err == nil {
			break
		}
		if i == 500 {
			t.Fatal("the hook did not start within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	returned := make(chan struct{})
	go func() {
		for range 49 {
			r.Transitioned("wg0", health.Transition{From: health.Announced, To: health.Withdrawn, Detail: "x"})
		}
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("Transitioned blocked behind a hung hook")
	}
	// One running, two queued, the other 47 dropped.
	if d := r.Dropped(); d != 47 {
		t.Errorf("dropped %d transitions, want 47", d)
	}
	// Close with an expired context kills the hung hook and drops the
	// queued ones.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.Close(ctx)
	if !strings.Contains(logs.String(), "transitions already waiting for the hook") {
		t.Errorf("drops not logged:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "killed: wgbird is stopping") {
		t.Errorf("hung hook not killed at Close:\n%s", logs.String())
	}
	r.Transitioned("wg0", health.Transition{To: health.Announced})
	if d := r.Dropped(); d != 50 {
		t.Errorf("after Close: dropped %d, want 50 (every transition but the killed one)", d)
	}
}

func TestFailureLogged(t *testing.T) {
	r, logs := start(t, Options{Command: []string{"sh", "-c", "echo no route to pager >&2; exit 3"}, Timeout: 10 * time.Second})
	r.Transitioned("wg0", health.Transition{From: health.Announced, To: health.Withdrawn, Detail: "x"})
	closeWithin(t, r, 20*time.Second)
	if l := logs.String(); !strings.Contains(l, `msg="hook failed"`) || !strings.Contains(l, "exit status 3") || !strings.Contains(l, `output="no route to pager"`) {
		t.Errorf("failure not logged with its status and output:\n%s", l)
	}
}

func TestStartRefuses(t *testing.T) {
	if _, err := Start(Options{Timeout: time.Second}); err == nil {
		t.Error("Start without a command succeeded")
	}
	if _, err := Start(Options{Command: []string{"true"}}); err == nil {
		t.Error("Start without a timeout succeeded")
	}
}
