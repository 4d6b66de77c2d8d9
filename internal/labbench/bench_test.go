package labbench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/lab"
)

func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 20; i >= 1; i-- {
		ds = append(ds, ms(float64(i)))
	}
	tests := []struct {
		in   []time.Duration
		want Stats
	}{
		{nil, Stats{}},
		{[]time.Duration{ms(5)}, Stats{N: 1, Min: ms(5), P50: ms(5), P95: ms(5), Max: ms(5)}},
		{[]time.Duration{ms(3), ms(1), ms(2)}, Stats{N: 3, Min: ms(1), P50: ms(2), P95: ms(3), Max: ms(3)}},
		// Nearest rank: p50 of 20 is the 10th, p95 the 19th.
		{ds, Stats{N: 20, Min: ms(1), P50: ms(10), P95: ms(19), Max: ms(20)}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, Summarize(tt.in)); diff != "" {
			t.Errorf("Summarize(%v) (-want +got):\n%s", tt.in, diff)
		}
	}
	if ds[0] != ms(20) {
		t.Error("Summarize sorted its argument")
	}
}

func TestModeResultStats(t *testing.T) {
	mr := ModeResult{Mode: lab.Hang, Samples: []Sample{
		{Withdrawn: true, Withdraw: ms(900), Returned: true, Return: ms(3000), Heal: ms(10)},
		{Withdrawn: true, Withdraw: ms(1100)}, // not back
		{Withdrawn: false},
		{Err: "boom", Withdrawn: true, Withdraw: ms(1)},
	}}
	k, n := mr.Counts()
	if k != 2 || n != 3 || mr.Errors() != 1 {
		t.Errorf("Counts = %d, %d, Errors = %d; want 2, 3, 1", k, n, mr.Errors())
	}
	if diff := cmp.Diff(Stats{N: 2, Min: ms(900), P50: ms(900), P95: ms(1100), Max: ms(1100)}, mr.WithdrawStats()); diff != "" {
		t.Errorf("WithdrawStats (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Stats{N: 1, Min: ms(3000), P50: ms(3000), P95: ms(3000), Max: ms(3000)}, mr.ReturnStats()); diff != "" {
		t.Errorf("ReturnStats (-want +got):\n%s", diff)
	}
}

// goBenchOutput is real `go test -bench . -benchmem` output of this tree,
// two packages, with a failed benchmark's bare name line.
const goBenchOutput = `goos: linux
goarch: amd64
pkg: github.com/wgbird/wgbird/internal/daemon
cpu: Oxide Virtual Turin-like Processor             
BenchmarkReconcileStep-2      	  174351	      6558 ns/op	     761 B/op	      19 allocs/op
BenchmarkReconcileCorrect-2   	  191479	      6209 ns/op	     713 B/op	      21 allocs/op
PASS
ok  	github.com/wgbird/wgbird/internal/daemon	2.364s
goos: linux
goarch: amd64
pkg: github.com/wgbird/wgbird/internal/wireguard
cpu: Oxide Virtual Turin-like Processor             
BenchmarkEvaluate10kPeers-2   	    1234	    967000 ns/op
BenchmarkDevice10kPeers
    integration_test.go:12: not root
--- SKIP: BenchmarkDevice10kPeers
BenchmarkSub/peers=10-2	100	12.5 ns/op	0 B/op	0 allocs/op
PASS
`

func TestParseGoBench(t *testing.T) {
	got, err := ParseGoBench(strings.NewReader(goBenchOutput))
	if err != nil {
		t.Fatal(err)
	}
	want := []GoBench{
		{Pkg: "github.com/wgbird/wgbird/internal/daemon", Name: "BenchmarkReconcileStep", Procs: 2, Iterations: 174351, NsPerOp: 6558, BytesPerOp: 761, AllocsPerOp: 19},
		{Pkg: "github.com/wgbird/wgbird/internal/daemon", Name: "BenchmarkReconcileCorrect", Procs: 2, Iterations: 191479, NsPerOp: 6209, BytesPerOp: 713, AllocsPerOp: 21},
		{Pkg: "github.com/wgbird/wgbird/internal/wireguard", Name: "BenchmarkEvaluate10kPeers", Procs: 2, Iterations: 1234, NsPerOp: 967000, BytesPerOp: -1, AllocsPerOp: -1},
		{Pkg: "github.com/wgbird/wgbird/internal/wireguard", Name: "BenchmarkSub/peers=10", Procs: 2, Iterations: 100, NsPerOp: 12.5, BytesPerOp: 0, AllocsPerOp: 0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseGoBench (-want +got):\n%s", diff)
	}
}

func TestGoBenchCommand(t *testing.T) {
	const mod = "github.com/wgbird/wgbird"
	tests := []struct {
		b    GoBench
		want string
	}{
		{GoBench{Pkg: mod + "/internal/daemon", Name: "BenchmarkReconcileStep"},
			`go test -run '^$' -bench '^BenchmarkReconcileStep$' -benchmem ./internal/daemon`},
		{GoBench{Pkg: mod + "/internal/bird", Name: "BenchmarkRoundTrip", Integration: true},
			`sudo go test -tags integration -run '^$' -bench '^BenchmarkRoundTrip$' -benchmem ./internal/bird`},
		{GoBench{Pkg: mod + "/internal/x", Name: "BenchmarkSub/peers=10"},
			`go test -run '^$' -bench '^BenchmarkSub$/^peers=10$' -benchmem ./internal/x`},
	}
	for _, tt := range tests {
		if got := tt.b.Command(mod); got != tt.want {
			t.Errorf("Command(%s) = %q, want %q", tt.b.Name, got, tt.want)
		}
	}
}

func TestMarkIntegration(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "internal", "x")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"unit_test.go":        "package x\n\nfunc BenchmarkUnit(b *testing.B) {}\n",
		"integration_test.go": "// Copyright\n\n//go:build integration && linux\n\npackage x\n\nfunc BenchmarkRoot(b *testing.B) {}\n",
		"other_test.go":       "//go:build integrationx\n\npackage x\n\nfunc BenchmarkOther(b *testing.B) {}\n",
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bs := []GoBench{{Pkg: "m/internal/x", Name: "BenchmarkUnit"}, {Pkg: "m/internal/x", Name: "BenchmarkRoot/sub"}, {Pkg: "m/internal/x", Name: "BenchmarkOther"}}
	MarkIntegration(bs, root, "m")
	var got []bool
	for _, b := range bs {
		got = append(got, b.Integration)
	}
	if diff := cmp.Diff([]bool{false, true, false}, got); diff != "" {
		t.Errorf("Integration (-want +got):\n%s", diff)
	}
}

func TestReplaceBlock(t *testing.T) {
	block := BenchStartMarker + "\nnew\n" + BenchEndMarker + "\n"
	tests := []struct{ doc, want string }{
		{"# T\n\nbefore\n" + BenchStartMarker + "\nold\nold\n" + BenchEndMarker + "\nafter\n",
			"# T\n\nbefore\n" + BenchStartMarker + "\nnew\n" + BenchEndMarker + "\nafter\n"},
		{"# T\n\ntext", "# T\n\ntext\n\n## Benchmarks\n\n" + BenchStartMarker + "\nnew\n" + BenchEndMarker + "\n"},
		// An end marker before the start is no block.
		{BenchEndMarker + "\n" + BenchStartMarker + "\n", BenchEndMarker + "\n" + BenchStartMarker + "\n\n## Benchmarks\n\n" + BenchStartMarker + "\nnew\n" + BenchEndMarker + "\n"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, ReplaceBlock(tt.doc, block)); diff != "" {
			t.Errorf("ReplaceBlock(%q) (-want +got):\n%s", tt.doc, diff)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := map[time.Duration]string{
		ms(0.42):    "0.4 ms",
		ms(9.94):    "9.9 ms",
		ms(10.4):    "10 ms",
		ms(912.3):   "912 ms",
		ms(1618):    "1.62 s",
		ms(10000.0): "10.00 s",
	}
	for d, want := range tests {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestParseProc(t *testing.T) {
	// Captured from /proc/PID/stat and /proc/PID/status; utime 12, stime 3.
	stat := "25800 (wgbird run) S 25798 25798 721 0 -1 4194304 102 0 0 0 12 3 0 0 20 0 1 0 338718 2998272 405 18446744073709551615 0\n"
	cpu, err := parseStatCPU(stat)
	if err != nil || cpu != 150*time.Millisecond {
		t.Errorf("parseStatCPU = %v, %v; want 150ms", cpu, err)
	}
	if _, err := parseStatCPU("garbage"); err == nil {
		t.Error("parseStatCPU(garbage): no error")
	}
	if got := cpuModel("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7763 64-Core Processor\n"); got != "AMD EPYC 7763 64-Core Processor" {
		t.Errorf("cpuModel = %q", got)
	}
}

func TestParseSeriesAndModes(t *testing.T) {
	s, err := ParseSeries("floor, wgbird,floor")
	if err != nil || !cmp.Equal(s, []BenchSeries{SeriesFloor, SeriesWgbird}) {
		t.Errorf("ParseSeries = %v, %v", s, err)
	}
	if _, err := ParseSeries("bird,nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("ParseSeries(nope) error = %v", err)
	}
	if s, _ := ParseSeries("all"); len(s) != len(AllSeries) {
		t.Errorf("ParseSeries(all) = %v", s)
	}
	m, err := ParseBenchModes("hang,kill")
	if err != nil || !cmp.Equal(m, []lab.Mode{lab.Hang, lab.Kill}) {
		t.Errorf("ParseBenchModes = %v, %v", m, err)
	}
	if _, err := ParseBenchModes("bird-restart"); err == nil || !strings.Contains(err.Error(), "not benchmarked") {
		t.Errorf("ParseBenchModes(bird-restart) error = %v", err)
	}
	for _, m := range BenchModes {
		if _, err := lab.ParseMode(string(m)); err != nil {
			t.Errorf("bench mode %s is not a lab mode: %v", m, err)
		}
	}
}

// The bench server's wgbird runs at wgbird's defaults: its config must
// load and leave interval, rise and fall at them.
func TestBenchWgbirdConf(t *testing.T) {
	cfg, err := config.Parse("wgbird-bench.toml", []byte(BenchWgbirdConf("/run/x/s1", lab.Thresholds{})))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Services[0]
	got := []any{s.Interval, s.Rise, s.Fall, s.ListenPort, cfg.BIRD.Socket}
	want := []any{config.DefaultInterval, config.DefaultRise, config.DefaultFall, lab.ListenPort, "/run/x/s1/bird.ctl"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}
	text := BenchWgbirdConf("/run/x/s1", lab.Thresholds{Interval: 500 * time.Millisecond, Rise: 2, Fall: 1}) + lab.ProbeTable("/run/x/s1/probe.key", "mX6rlDRJ6NS0kDbDDDpyiyMJ+dYHA7GkdOXSrZQZCX8=")
	if cfg, err = config.Parse("wgbird-bench.toml", []byte(text)); err != nil {
		t.Fatal(err)
	}
	if s := cfg.Services[0]; s.Interval != 500*time.Millisecond || s.Rise != 2 || s.Fall != 1 || s.Probe == nil {
		t.Errorf("thresholds and probe not taken: %+v", s)
	}
}

func TestExaBGPConf(t *testing.T) {
	conf := ExaBGPConf(lab.Servers[0], "/run/x/s1/exabgp-disabled")
	for _, want := range []string{
		"processes [ watch-wg0 ];",
		`--cmd "wg show wg0"`,
		"--up-metric 0",
		"--no-syslog",
		"--rise 3 --fall 1",
		"/usr/bin/python3 -m exabgp healthcheck",
		"neighbor 10.0.0.1 {",
		"local-address 10.0.5.1;",
		"--disable /run/x/s1/exabgp-disabled",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("ExaBGPConf lacks %q:\n%s", want, conf)
		}
	}
}

func TestWrap(t *testing.T) {
	got := wrap("one two three `a b c d` four", 12, "  ")
	want := "one two\n  three\n  `a b c d`\n  four"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("wrap (-want +got):\n%s", diff)
	}
}

// benchFixture is a result as a full run leaves it, with every kind of
// cell: withdrawn, not withdrawn, n/a, failed repetitions.
func benchFixture() *BenchResult {
	rep := func(w, r float64) Sample {
		return Sample{Withdrawn: true, Withdraw: ms(w), Returned: true, Return: ms(r), Heal: ms(20)}
	}
	miss := Sample{}
	return &BenchResult{
		Started: time.Date(2025, 11, 25, 18, 0, 0, 0, time.UTC), Took: 24 * time.Minute,
		Machine:    Machine{CPU: "AMD EPYC", Cores: 2, Kernel: "6.1.0", LoadStart: "0.10 0.20 0.30", LoadEnd: "1.00 0.90 0.50", Bird: "BIRD version 2.0.12", WGGo: "wireguard-go v0.0.20220316", ExaBGP: "ExaBGP 4.2.21", Go: "go1.26.0"},
		Thresholds: lab.Thresholds{}, Server: "s1", Reps: 3, RefReps: 2, Bound: 10 * time.Second, Command: "make bench",
		Series: []SeriesResult{
			{Series: SeriesWgbird, Setup: "wgbird set-up.", Modes: []ModeResult{
				{Mode: lab.Kill, Samples: []Sample{rep(4, 2500), rep(5, 2600), rep(6, 2700)}},
				{Mode: lab.Hang, Samples: []Sample{rep(800, 2900), rep(950, 3000), rep(1200, 3050)}},
				{Mode: lab.LinkDown, Samples: []Sample{rep(30, 2500), rep(31, 2500), {Err: "boom"}}},
			}},
			{Series: SeriesFloor, Setup: "floor set-up.", Modes: []ModeResult{{Mode: floorMode, Samples: []Sample{rep(0.5, 0.9), rep(0.7, 1.1)}}}},
			{Series: SeriesBird, Setup: "bird set-up.", Modes: []ModeResult{
				{Mode: lab.Kill, Samples: []Sample{rep(3, 40), rep(4, 40)}},
				{Mode: lab.Hang, Samples: []Sample{miss, miss}, Note: "stopped"},
				{Mode: lab.Drain, NA: "no sidecar to drain"},
			}},
			{Series: SeriesExaBGP, Skipped: "ExaBGP is not installed"},
			{Series: SeriesOSPF, Setup: "ospf set-up.", Modes: []ModeResult{
				{Mode: lab.Hang, Samples: []Sample{rep(1500, 3100), rep(1700, 3300)}},
			}},
		},
		Idle:    &IdleResult{Peers: 1000, Interval: time.Second, Window: time.Minute, CPU: 30 * time.Millisecond, PeakRSS: 12_000_000, RSS: 11_000_000, RSSAnon: 3_000_000, RSSFile: 8_000_000},
		GoBench: []GoBench{{Pkg: "github.com/wgbird/wgbird/internal/bird", Name: "BenchmarkRoundTrip", Procs: 2, Iterations: 10, NsPerOp: 45300, BytesPerOp: 2048, AllocsPerOp: 12, Integration: true}},
	}
}

func TestTargets(t *testing.T) {
	want := []TargetResult{
		{Target: "event modes withdrawn within the floor + 20 ms at p50 (0.5 ms + 20 ms = 21 ms)", Measured: "kill 5.0 ms, link-down 30 ms", Verdict: "**not met**"},
		{Target: "hung wireguard-go withdrawn within 0.7 s at p50, 1.0 s at p95", Measured: "p50 950 ms, p95 1.20 s (3/3 withdrawn)", Verdict: "**not met**"},
		{Target: "every mode at least as fast as BIRD + BFD alone (p50)", Measured: "slower in kill (+2.0 ms at p50)", Verdict: "**not met**"},
		{Target: "return after heal within rise × interval + 100 ms (3.10 s) at p50", Measured: "slowest p50 3.00 s; every max within", Verdict: "met"},
	}
	if diff := cmp.Diff(want, benchFixture().Targets()); diff != "" {
		t.Errorf("Targets (-want +got):\n%s", diff)
	}
}

func TestMarkdown(t *testing.T) {
	md := benchFixture().Markdown("github.com/wgbird/wgbird")
	if !strings.HasPrefix(md, BenchStartMarker+"\n") || !strings.HasSuffix(md, BenchEndMarker+"\n") {
		t.Errorf("block not delimited by the markers:\n%s", md)
	}
	for _, want := range []string{
		"Measured on 2025-11-25 by `make bench` in 24m0s: AMD EPYC, 2 cores,",
		"#### wgbird at its defaults (interval 1s, rise 3, fall 2), N = 3",
		"| kill | 3/3 | 4.0 ms | 5.0 ms | 6.0 ms | 6.0 ms | 2.50 s | 2.60 s | 2.70 s | 2.70 s |",
		"| link-down | 2/2 (1 failed) | 30 ms |",
		"| fault | wgbird | wgbird over OSPF | BIRD + BFD alone | ExaBGP healthcheck |",
		"| hang | 950 ms / 1.20 s | 1.50 s / 1.70 s | **not withdrawn** (0/2 in 10s) | – |",
		"| kill | 5.0 ms / 6.0 ms | – | 3.0 ms / 4.0 ms | – |",
		"- wgbird over OSPF: ospf set-up. Again:",
		"- ExaBGP's healthcheck: not measured: ExaBGP is not installed",
		"`enable` brings the nexthop back in 0.9 ms p50 / 1.1 ms p95",
		"| CPU | 0.03 s in 1m0s: 0.050 % of one core | under 0.1 % | met |",
		"| peak RSS | 12.0 MB (at the end 11.0 MB: 3.0 MB anonymous, 8.0 MB file pages) | under 14 MB, under 5 MB anonymous | met |",
		"| RoundTrip (internal/bird) | 45.3 µs | 2.0 KiB | 12 | `sudo go test -tags integration -run '^$' -bench '^BenchmarkRoundTrip$' -benchmem ./internal/bird` |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	for i, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") && !strings.Contains(line, "`") && len([]rune(line)) > 78 {
			t.Errorf("line %d is %d columns long: %q", i+1, len([]rune(line)), line)
		}
	}
}

func TestDetectionRows(t *testing.T) {
	r := benchFixture()
	const mod = "github.com/wgbird/wgbird"
	r.GoBench = append(r.GoBench,
		GoBench{Pkg: mod + "/internal/wireguard", Name: "BenchmarkSummary10kPeers", NsPerOp: 4.1e6, BytesPerOp: 7234, AllocsPerOp: 47},
		GoBench{Pkg: mod + "/internal/wireguard", Name: "BenchmarkDevice10kPeers", NsPerOp: 31e6, BytesPerOp: 7300, AllocsPerOp: 48, Integration: true})
	r.Reload = &ReloadResult{Blips: []time.Duration{0, 40 * time.Millisecond, 60 * time.Millisecond, 160 * time.Millisecond}}
	rows := r.DetectionRows(mod)
	var got []string
	for _, row := range rows {
		got = append(got, row.What+" | "+row.Measured+" | "+row.Verdict)
	}
	want := []string{
		"hung wireguard-go withdrawn (p50, p95) | 950 ms, 1.20 s (3/3) | **not met**",
		"idle CPU, one service, 1000 peers, interval 1s, 1m0s | 0.050 % | met",
		"anonymous memory, same | 3.0 MB | met",
		"peak RSS, same | 12.0 MB | met",
		"one device read, 10,000 peers (wgbird's part: an in-process UAPI server) | 4.10 ms, 7.1 KiB, 47 allocs | met",
		"one device read, 10,000 peers (a real wireguard-go, its time to answer included) | 31.00 ms, 7.1 KiB, 48 allocs | **not met**",
		"`birdc configure` on a healthy server: its nexthop missing at the router (p50, max) | 40 ms, 160 ms (4 reloads) | **not met**",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DetectionRows (-want +got):\n%s", diff)
	}
	if c := rows[len(rows)-1].Command; c != "sudo bin/wgbird-lab bench --wgbird bin/wgbird --series reload --reps 12" {
		t.Errorf("reload row's command = %q", c)
	}
}
