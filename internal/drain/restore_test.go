package drain

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wgbird/wgbird/internal/api"
)

// target records the drains Restore applies.
type target struct {
	services []string
	drains   map[string]api.Drain
}

func (t *target) Services() []string { return t.services }

func (t *target) SetDrain(names []string, dr *api.Drain) error {
	for _, n := range names {
		t.drains[n] = *dr
	}
	return nil
}

// TestRestore: a stored drain comes back for its service, an unreadable
// file still drains its service, and a stray file drains nothing.
func TestRestore(t *testing.T) {
	dir := t.TempDir()
	store := NewStore(filepath.Join(dir, "run"), filepath.Join(dir, "lib"))
	d1 := api.Drain{Reason: "kernel update", Since: since, Persist: true}
	if err := store.Save([]string{"wg1", "gone"}, d1); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "run", "drains", "wg2.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	tg := &target{services: []string{"wg0", "wg1", "wg2"}, drains: map[string]api.Drain{}}
	if err := Restore(tg, store, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"wg1", "wg2"}, keys(tg.drains)); diff != "" {
		t.Errorf("drained (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(d1, tg.drains["wg1"]); diff != "" {
		t.Errorf("wg1 (-want +got):\n%s", diff)
	}
	if r := tg.drains["wg2"].Reason; r == "" {
		t.Errorf("wg2 drained without a reason")
	}
}

func keys(m map[string]api.Drain) []string {
	var out []string
	for _, k := range []string{"wg0", "wg1", "wg2", "gone"} {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	return out
}
