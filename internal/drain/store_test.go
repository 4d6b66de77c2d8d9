package drain

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wgbird/wgbird/internal/api"
)

type storeRig struct {
	runtime, state string
	st             *Store
}

func newStoreRig(t *testing.T) *storeRig {
	dir := t.TempDir()
	r := &storeRig{runtime: filepath.Join(dir, "run"), state: filepath.Join(dir, "lib")}
	r.st = NewStore(r.runtime, r.state)
	return r
}

// files lists every file under the rig's directories, relative to them.
func (r *storeRig) files(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, root := range []string{r.runtime, r.state} {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(filepath.Dir(root), p)
				out = append(out, rel)
			}
			return nil
		})
	}
	sort.Strings(out)
	return out
}

var since = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func TestStoreSaveLoadRemove(t *testing.T) {
	runtimeOnly := api.Drain{Reason: "maintenance", Since: since}
	persistent := api.Drain{Reason: "kernel update", Since: since.Add(time.Minute), Persist: true}
	tests := []struct {
		name      string
		saves     []api.Drain // in order, all for wg0
		reboot    bool        // runtime dir emptied before loading
		wantFiles []string
		want      []api.Drain // Load's drains for wg0
	}{
		{
			name:      "runtime drain: kept across a restart",
			saves:     []api.Drain{runtimeOnly},
			wantFiles: []string{"run/drains/wg0.json"},
			want:      []api.Drain{runtimeOnly},
		},
		{
			name:   "runtime drain: gone after a reboot",
			saves:  []api.Drain{runtimeOnly},
			reboot: true,
		},
		{
			name:      "persistent drain: in both places",
			saves:     []api.Drain{persistent},
			wantFiles: []string{"lib/drains/wg0.json", "run/drains/wg0.json"},
			want:      []api.Drain{persistent},
		},
		{
			name:      "persistent drain: kept across a reboot",
			saves:     []api.Drain{persistent},
			reboot:    true,
			wantFiles: []string{"lib/drains/wg0.json"},
			want:      []api.Drain{persistent},
		},
		{
			name:      "a later runtime drain replaces a persistent one",
			saves:     []api.Drain{persistent, runtimeOnly},
			wantFiles: []string{"run/drains/wg0.json"},
			want:      []api.Drain{runtimeOnly},
		},
		{
			name:      "a later persistent drain replaces a runtime one",
			saves:     []api.Drain{runtimeOnly, persistent},
			wantFiles: []string{"lib/drains/wg0.json", "run/drains/wg0.json"},
			want:      []api.Drain{persistent},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newStoreRig(t)
			for _, d := range tt.saves {
				if err := r.st.Save([]string{"wg0"}, d); err != nil {
					t.Fatalf("Save: %v", err)
				}
			}
			if tt.reboot {
				if err := os.RemoveAll(r.runtime); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(tt.wantFiles, r.files(t)); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
			loaded, stray := r.st.Load([]string{"wg0", "wg1"})
			var got []api.Drain
			for _, l := range loaded {
				if l.Service != "wg0" || l.Err != nil {
					t.Errorf("loaded %+v", l)
				}
				got = append(got, l.Drain)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("loaded drains (-want +got):\n%s", diff)
			}
			if len(stray) > 0 {
				t.Errorf("stray = %v", stray)
			}

			if err := r.st.Remove([]string{"wg0", "wg1"}); err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if got := r.files(t); len(got) > 0 {
				t.Errorf("files after Remove: %v", got)
			}
		})
	}
}

// TestStoreFileFormat: the file is complete JSON naming its service, and
// no temporary file is left beside it.
func TestStoreFileFormat(t *testing.T) {
	r := newStoreRig(t)
	d := api.Drain{Reason: "kernel update", Since: since, Persist: true}
	for range 3 { // overwriting too
		if err := r.st.Save([]string{"wg0"}, d); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{r.runtime, r.state} {
		entries, err := os.ReadDir(filepath.Join(dir, "drains"))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if diff := cmp.Diff([]string{"wg0.json"}, names); diff != "" {
			t.Errorf("%s (-want +got):\n%s", dir, diff)
		}
		b, err := os.ReadFile(filepath.Join(dir, "drains", "wg0.json"))
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		want := map[string]any{"service": "wg0", "reason": "kernel update", "since": "2025-03-01T12:00:00Z", "persistent": true}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("file (-want +got):\n%s", diff)
		}
	}
}

// brokenDir returns a directory path that cannot be created: its parent
// is a regular file. Root ignores permission bits; this it cannot ignore.
func brokenDir(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(f, "dir")
}

func TestStoreUnwritable(t *testing.T) {
	persistent := api.Drain{Reason: "old", Since: since, Persist: true}
	t.Run("runtime dir", func(t *testing.T) {
		st := NewStore(brokenDir(t), t.TempDir())
		err := st.Save([]string{"wg0"}, api.Drain{Reason: "x", Since: since})
		if err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Fatalf("Save = %v, want an error saying why", err)
		}
		if loaded, _ := st.Load([]string{"wg0"}); len(loaded) != 0 {
			t.Errorf("loaded %+v after a failed save", loaded)
		}
	})
	t.Run("state dir, persistent drain: runtime file not left behind", func(t *testing.T) {
		r := newStoreRig(t)
		st := NewStore(r.runtime, brokenDir(t))
		if err := st.Save([]string{"wg0", "wg1"}, persistent); err == nil {
			t.Fatal("Save succeeded")
		}
		if got := r.files(t); len(got) > 0 {
			t.Errorf("files after a failed save: %v", got)
		}
	})
	t.Run("second service fails: first one's files restored", func(t *testing.T) {
		r := newStoreRig(t)
		if err := r.st.Save([]string{"wg0"}, persistent); err != nil {
			t.Fatal(err)
		}
		before := r.files(t)
		old, err := os.ReadFile(filepath.Join(r.state, "drains", "wg0.json"))
		if err != nil {
			t.Fatal(err)
		}
		// wg1's runtime file cannot be written: a directory is in its way.
		if err := os.MkdirAll(filepath.Join(r.runtime, "drains", "wg1.json", "x"), 0o755); err != nil {
			t.Fatal(err)
		}
		err = r.st.Save([]string{"wg0", "wg1"}, api.Drain{Reason: "new", Since: since})
		if err == nil {
			t.Fatal("Save succeeded")
		}
		if diff := cmp.Diff(before, r.files(t)); diff != "" {
			t.Errorf("files (-want +got):\n%s", diff)
		}
		got, err := os.ReadFile(filepath.Join(r.state, "drains", "wg0.json"))
		if err != nil || string(got) != string(old) {
			t.Errorf("persistent file of wg0 not restored: %q, %v", got, err)
		}
	})
}

func TestStoreLoadUnreadableAndStray(t *testing.T) {
	r := newStoreRig(t)
	if err := os.MkdirAll(filepath.Join(r.state, "drains"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.state, "drains", "wg0.json"), []byte("{trunc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.st.Save([]string{"gone"}, api.Drain{Reason: "x", Since: since}); err != nil {
		t.Fatal(err)
	}
	loaded, stray := r.st.Load([]string{"wg0"})
	if len(loaded) != 1 || loaded[0].Err == nil || !loaded[0].Drain.Persist || !strings.Contains(loaded[0].Drain.Reason, "unreadable") {
		t.Errorf("loaded = %+v, want wg0 drained with an unreadable-file reason", loaded)
	}
	if diff := cmp.Diff([]string{filepath.Join(r.runtime, "drains", "gone.json")}, stray); diff != "" {
		t.Errorf("stray (-want +got):\n%s", diff)
	}
}

func TestStoreRefusesPathNames(t *testing.T) {
	r := newStoreRig(t)
	for _, name := range []string{"", ".", "..", "a/b"} {
		if err := r.st.Save([]string{name}, api.Drain{}); err == nil {
			t.Errorf("Save(%q) succeeded", name)
		}
	}
}
