package control

import (
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
		for _, path := range []string{api.PathPprof, api.PathPprof + "heap?debug=1&gc=1", api.PathPprof + "goroutine?debug=1", api.PathPprof + "cmdline"} {
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
