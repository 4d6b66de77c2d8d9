package labsoak

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/lab"
	"github.com/wgbird/wgbird/internal/labproc"
)

func TestHeapLeak(t *testing.T) {
	at := func(cycle int, inuse, live int64) MemSample {
		return MemSample{Cycle: cycle, Heap: HeapStats{Inuse: inuse << 10, Live: live << 10}}
	}
	samples := []MemSample{at(0, 1000, 400), at(20, 1500, 450), at(100, 1600, 460), at(200, 1856, 716)}
	for _, tt := range []struct {
		name    string
		samples []MemSample
		warmUp  int
		want    string
	}{
		// Growth before the warm-up is the one-time kind: not counted.
		{"flat after warm-up", []MemSample{at(0, 1000, 400), at(20, 1500, 450), at(40, 1400, 440)}, 20, ""},
		{"exactly the slack", samples, 100, ""},
		{"in use one KiB more", append(samples[:3:3], at(200, 1857, 460)), 100,
			"s1: from cycle 100 to 200, heap in use 1600 -> 1857 KiB (+257), live heap 460 -> 460 KiB (+0); slack 256 KiB"},
		// A leak that fills the free space of spans in use shows in the
		// live heap first.
		{"live one KiB more", append(samples[:3:3], at(200, 1600, 717)), 100,
			"s1: from cycle 100 to 200, heap in use 1600 -> 1600 KiB (+0), live heap 460 -> 717 KiB (+257); slack 256 KiB"},
		{"grew from the warm-up", samples, 20,
			"s1: from cycle 20 to 200, heap in use 1500 -> 1856 KiB (+356), live heap 450 -> 716 KiB (+266); slack 256 KiB"},
		{"no sample at the warm-up", samples, 50, "s1: no heap figures after the warm-up (cycle 50)"},
		{"none at all", nil, 0, "s1: no heap figures after the warm-up (cycle 0)"},
	} {
		if got := heapLeak("s1", tt.samples, tt.warmUp, 256<<10); got != tt.want {
			t.Errorf("%s: heapLeak =\n %q, want\n %q", tt.name, got, tt.want)
		}
	}
}

func TestSoakResultWritesMemory(t *testing.T) {
	r := Result{Seed: 7, Cycles: 500, WarmUp: 100, HeapSlack: 256 << 10, Memory: map[string][]MemSample{
		"s1": {
			{Cycle: 0, Mem: labproc.MemStatus{RSS: 13 << 20, Anon: 3 << 20}, Heap: HeapStats{Inuse: 1500 << 10, Live: 400 << 10}},
			{Cycle: 100, Mem: labproc.MemStatus{RSS: 17 << 20, Anon: 7 << 20}, Heap: HeapStats{Inuse: 1600 << 10, Live: 450 << 10}},
			{Cycle: 500, Mem: labproc.MemStatus{RSS: 18 << 20, Anon: 8 << 20}, Heap: HeapStats{Inuse: 1620 << 10, Live: 455 << 10}},
		},
	}}
	var b strings.Builder
	r.Write(&b)
	for _, want := range []string{
		"wgbird s1: after cycle 0 / 100 / 500: heap in use 1500 / 1600 / 1620 KiB, live heap 400 / 450 / 455 KiB, RSS 13.0 / 17.0 / 18.0 MiB (anonymous 3.0 / 7.0 / 8.0 MiB)\n",
		"heap in use and live heap flat from cycle 100 (slack 256 KiB)\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary has no %q:\n%s", want, b.String())
		}
	}
}

// The soak's exec check and hook are valid config on the service after
// the lab's probe table (lab's TestWgbirdExtra: that is where a lab puts
// Config.WgbirdExtra).
func TestWgbirdExtra(t *testing.T) {
	text := lab.WgbirdConf(t.TempDir(), lab.Thresholds{}) + lab.ProbeTable("/probe.key", "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=") + "\n" + WgbirdExtra
	cfg, err := config.Parse("wgbird.toml", []byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	svc := cfg.Services[0]
	if len(svc.Exec) != 1 || svc.Exec[0].Name != "soak" || svc.Probe == nil {
		t.Errorf("service has exec %+v and probe %v, want the soak's exec check and the probe:\n%s", svc.Exec, svc.Probe, text)
	}
	if diff := cmp.Diff([]string{"/bin/true"}, cfg.Hook.Command); diff != "" {
		t.Errorf("hook command (-want +got):\n%s", diff)
	}
}

func TestHeapIdle(t *testing.T) {
	// From a lab wgbird's /debug/memory after 50 cycles.
	h := HeapStats{Inuse: 1613824, Sys: 11239424, Released: 9289728}
	if got, want := h.Idle(), int64(11239424-1613824-9289728); got != want {
		t.Errorf("Idle() = %d, want %d", got, want)
	}
}
