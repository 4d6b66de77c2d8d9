package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseHeapProfile(t *testing.T) {
	// testdata/heap_debug1.txt: runtime/pprof's heap profile at debug=1 of a
	// program that holds 3 MiB, captured after runtime.GC().
	got, err := parseHeapProfile(readTestdata(t, "heap_debug1.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := HeapStats{Inuse: 3481600, Alloc: 3213584, Sys: 8093696, Released: 4546560, Objects: 123, NumGC: 1, RuntimeSys: 12159256}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("heap stats (-want +got):\n%s", diff)
	}
}

func TestParseHeapProfileErrors(t *testing.T) {
	full := readTestdata(t, "heap_debug1.txt")
	for name, text := range map[string]string{
		"empty":        "",
		"no HeapInuse": strings.Replace(full, "# HeapInuse = ", "# HeapInuseX = ", 1),
		"not a number": strings.Replace(full, "# HeapInuse = 3481600", "# HeapInuse = 3.4e6", 1),
	} {
		if h, err := parseHeapProfile(text); err == nil {
			t.Errorf("%s: no error, got %+v", name, h)
		}
	}
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHeapLeak(t *testing.T) {
	at := func(cycle int, inuse int64) MemSample {
		return MemSample{Cycle: cycle, Heap: HeapStats{Inuse: inuse}}
	}
	samples := []MemSample{at(0, 1000<<10), at(20, 1500<<10), at(100, 1600<<10), at(200, 1856<<10)}
	for _, tt := range []struct {
		name    string
		samples []MemSample
		warmUp  int
		want    string
	}{
		// Growth before the warm-up is the one-time kind: not counted.
		{"flat after warm-up", []MemSample{at(0, 1000<<10), at(20, 1500<<10), at(40, 1400<<10)}, 20, ""},
		{"exactly the slack", samples, 100, ""},
		{"one KiB more", append(samples[:3:3], at(200, 1857<<10)), 100, "s1: heap in use 1600 -> 1857 KiB from cycle 100 to 200 (+257 KiB, slack 256 KiB)"},
		{"grew from the warm-up", samples, 20, "s1: heap in use 1500 -> 1856 KiB from cycle 20 to 200 (+356 KiB, slack 256 KiB)"},
		{"no sample at the warm-up", samples, 50, "s1: no heap figures after the warm-up (cycle 50)"},
		{"none at all", nil, 0, "s1: no heap figures after the warm-up (cycle 0)"},
	} {
		if got := heapLeak("s1", tt.samples, tt.warmUp, 256<<10); got != tt.want {
			t.Errorf("%s: heapLeak = %q, want %q", tt.name, got, tt.want)
		}
	}
}
