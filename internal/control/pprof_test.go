package control

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wgbird/wgbird/internal/api"
)

// The runtime profiles are there only when asked for: they show the
// process's memory and stacks to whoever may use the socket.
func TestPprofOnlyWhenEnabled(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		h := (&Server{pprof: enabled}).Handler()
		for _, path := range []string{api.PathPprof, api.PathPprof + "heap?debug=1&gc=1", api.PathPprof + "goroutine?debug=1", api.PathPprof + "cmdline", api.PathMemory} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			want := http.StatusNotFound
			if enabled {
				want = http.StatusOK
			}
			if rec.Code != want {
				t.Errorf("pprof %v: GET %s: status %d, want %d", enabled, path, rec.Code, want)
			}
		}
	}
	rec := httptest.NewRecorder()
	(&Server{pprof: true}).Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, api.PathPprof+"heap?debug=1&gc=1", nil))
	// The lab's soak reads these figures from the text heap profile.
	for _, want := range []string{"# HeapInuse = ", "# HeapAlloc = ", "heap profile: "} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("heap profile has no %q:\n%.500s", want, rec.Body.String())
		}
	}
}

// GET /debug/memory tells what is held: 4 MiB kept show in the live heap
// and the heap in use, and are gone from both once dropped.
func TestMemoryFollowsWhatIsHeld(t *testing.T) {
	h := (&Server{pprof: true}).Handler()
	read := func() api.MemoryReply {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, api.PathMemory, nil))
		var r api.MemoryReply
		if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %v\n%s", api.PathMemory, rec.Code, err, rec.Body)
		}
		if r.HeapLive == 0 || r.HeapInuse < r.HeapLive || r.HeapSys < r.HeapInuse || r.NumGC < 2 {
			t.Fatalf("implausible figures: %+v", r)
		}
		return r
	}
	// Other allocations (the test's own) may come and go by a few KiB.
	const held, noise = 4 << 20, 64 << 10
	before := read()
	keep := make([]byte, held)
	for i := range keep {
		keep[i] = byte(i)
	}
	during := read()
	keep[held-1] = 1 // keep is live until here
	keep = nil
	after := read()
	if got := int64(during.HeapLive) - int64(before.HeapLive); got < held-noise {
		t.Errorf("live heap grew by %d B while holding %d B", got, held)
	}
	if got := int64(during.HeapInuse) - int64(before.HeapInuse); got < held-noise {
		t.Errorf("heap in use grew by %d B while holding %d B", got, held)
	}
	if got := int64(during.HeapLive) - int64(after.HeapLive); got < held-noise {
		t.Errorf("live heap fell by %d B after dropping %d B", got, held)
	}
	_ = keep
}
