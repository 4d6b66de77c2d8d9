//go:build integration

package bird

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// nextSign waits for the watch's next sign, failing after 5 s.
func nextSign(t *testing.T, r *Reloads) Sign {
	t.Helper()
	type res struct {
		s   Sign
		err error
	}
	ch := make(chan res, 1)
	go func() { s, err := r.Next(context.Background()); ch <- res{s, err} }()
	select {
	case got := <-ch:
		if got.err != nil {
			t.Fatalf("Next: %v", got.err)
		}
		return got.s
	case <-time.After(5 * time.Second):
		t.Fatal("no sign within 5 s")
		return Sign{}
	}
}

// TestWatchReloads: against a real bird, the watch reports `configure`
// as its file opened, and a restarted bird as its socket created again
// (and still watches the file then, found again). Finding the file from
// the socket is birdlint.Locate's, tested there.
func TestWatchReloads(t *testing.T) {
	b := startBird(t)
	ctx := context.Background()
	conf := filepath.Join(b.dir, "bird.conf")
	located := 0
	locate := func(context.Context) (string, error) {
		located++
		return conf, nil
	}
	r, err := WatchReloads(ctx, b.sock, locate)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if diff := cmp.Diff([]string{conf}, r.Files()); diff != "" {
		t.Errorf("Files (-want +got):\n%s", diff)
	}

	c := NewClient(b.sock, Options{})
	defer c.Close()
	if _, err := c.Query(ctx, "configure"); err != nil {
		t.Fatal(err)
	}
	if s := nextSign(t, r); s.What != "BIRD's configuration file opened" || s.Lost != nil {
		t.Errorf("after configure: %+v", s)
	}

	b.kill()
	b.start()
	// The new bird reads its file at start-up too: that open may come as
	// a sign of its own, before or after the socket's.
	for i := 0; ; i++ {
		s := nextSign(t, r)
		if s.Lost != nil {
			t.Fatalf("after a restart: %+v", s)
		}
		if s.What == "BIRD's control socket created again" {
			break
		}
		if i > 3 {
			t.Fatalf("no socket sign after a restart; last %+v", s)
		}
	}
	if located != 2 {
		t.Errorf("config located %d times, want 2: at the start and after the restart", located)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := c.Query(ctx, "configure"); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		s := nextSign(t, r)
		if s.What == "BIRD's configuration file opened" {
			break
		}
		if i > 3 {
			t.Fatalf("no configuration sign after the restart's configure; last %+v", s)
		}
	}
}
