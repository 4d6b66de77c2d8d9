package cli

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wgbird/wgbird/internal/api"
)

// scriptedStatus answers Status from a list, repeating the last answer.
type scriptedStatus struct {
	mu      sync.Mutex
	answers []error // nil: a status; else that error
	calls   int
}

func (s *scriptedStatus) Status(context.Context) (api.StatusReply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := min(s.calls, len(s.answers)-1)
	s.calls++
	if err := s.answers[i]; err != nil {
		return api.StatusReply{}, err
	}
	return api.StatusReply{Version: "v1", Services: []api.ServiceStatus{{Name: "wg0", Interface: "wg0", State: "announced", Since: time.Now()}}}, nil
}

// frames collects what watch writes and stops it after n frames.
type frames struct {
	mu     sync.Mutex
	got    []string
	n      int
	cancel context.CancelFunc
}

func (f *frames) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, string(b))
	if len(f.got) == f.n {
		f.cancel()
	}
	return len(b), nil
}

func TestWatchStatus(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &frames{n: 4, cancel: cancel}
	c := &scriptedStatus{answers: []error{nil, errors.New("wgbird is not running (no answer on /run/wgbird/wgbird.sock)"), nil}}
	first, _ := c.Status(ctx)

	done := make(chan error, 1)
	go func() { done <- watchStatus(ctx, w, c, first, 5*time.Millisecond) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not stop when its context ended")
	}
	if len(w.got) != 4 {
		t.Fatalf("%d frames, want 4", len(w.got))
	}
	for i, f := range w.got {
		if !strings.HasPrefix(f, clearScreen) {
			t.Errorf("frame %d does not clear the screen first: %q", i, f)
		}
		if !strings.Contains(f, "Ctrl-C to stop") {
			t.Errorf("frame %d lacks the footer", i)
		}
	}
	if !strings.Contains(w.got[0], "wg0 (interface wg0): ANNOUNCED") {
		t.Errorf("frame 0 is not the table:\n%s", w.got[0])
	}
	if !strings.Contains(w.got[1], "wgbird not answering: wgbird is not running") {
		t.Errorf("frame 1 does not show the error:\n%s", w.got[1])
	}
	if !strings.Contains(w.got[2], "ANNOUNCED") {
		t.Errorf("frame 2: the table did not come back:\n%s", w.got[2])
	}
}

func TestStatusWatchAndJSON(t *testing.T) {
	noDefaultConfig(t)
	code, _, stderr := runMain("status", "--watch", "--json")
	if code != ExitConfig || !strings.Contains(stderr, "--watch and --json exclude each other") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
