package labbench

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wgbird/wgbird/internal/lab"
)

// This file holds the pure half of the failover benchmark: statistics,
// Go benchmark output parsing and the markdown that README includes.

// BenchStartMarker and BenchEndMarker delimit the benchmark block in
// README.md; RunBench's caller replaces what lies between them.
const (
	BenchStartMarker = "<!-- bench:start -->"
	BenchEndMarker   = "<!-- bench:end -->"
)

// Stats summarises durations: nearest-rank percentiles.
type Stats struct {
	N                  int
	Min, P50, P95, Max time.Duration
}

// Summarize returns the statistics of ds (zero Stats for none).
func Summarize(ds []time.Duration) Stats {
	if len(ds) == 0 {
		return Stats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return Stats{N: len(s), Min: s[0], P50: rank(0.50), P95: rank(0.95), Max: s[len(s)-1]}
}

// Sample is one repetition of a fault and its heal.
type Sample struct {
	// Withdrawn: the server's nexthop left the router's route within the
	// bound; Withdraw is the time from the fault.
	Withdrawn bool          `json:"withdrawn"`
	Withdraw  time.Duration `json:"withdraw_ns,omitempty"`
	// Returned: the nexthop came back; Return is the time from the start
	// of the heal.
	Returned bool          `json:"returned"`
	Return   time.Duration `json:"return_ns,omitempty"`
	// Heal is how long the heal itself took.
	Heal time.Duration `json:"heal_ns,omitempty"`
	// Err says why the repetition is not a measurement.
	Err string `json:"err,omitempty"`
}

// ModeResult is one fault mode of one series.
type ModeResult struct {
	Mode lab.Mode `json:"mode"`
	// NA says why the mode does not apply to the series ("" when it does).
	NA string `json:"na,omitempty"`
	// Note says why fewer repetitions than asked were made.
	Note    string   `json:"note,omitempty"`
	Samples []Sample `json:"samples,omitempty"`
}

// Counts returns how many valid repetitions withdrew, and how many valid
// ones there were.
func (m ModeResult) Counts() (withdrawn, valid int) {
	for _, s := range m.Samples {
		if s.Err != "" {
			continue
		}
		valid++
		if s.Withdrawn {
			withdrawn++
		}
	}
	return withdrawn, valid
}

// Errors returns the number of repetitions that failed.
func (m ModeResult) Errors() int {
	n := 0
	for _, s := range m.Samples {
		if s.Err != "" {
			n++
		}
	}
	return n
}

// WithdrawStats summarises the withdrawals.
func (m ModeResult) WithdrawStats() Stats {
	var ds []time.Duration
	for _, s := range m.Samples {
		if s.Err == "" && s.Withdrawn {
			ds = append(ds, s.Withdraw)
		}
	}
	return Summarize(ds)
}

// ReturnStats summarises the returns.
func (m ModeResult) ReturnStats() Stats {
	var ds []time.Duration
	for _, s := range m.Samples {
		if s.Err == "" && s.Returned {
			ds = append(ds, s.Return)
		}
	}
	return Summarize(ds)
}

// HealStats summarises how long the heals took.
func (m ModeResult) HealStats() Stats {
	var ds []time.Duration
	for _, s := range m.Samples {
		if s.Err == "" && s.Returned {
			ds = append(ds, s.Heal)
		}
	}
	return Summarize(ds)
}

// SeriesResult is one set-up measured over the modes.
type SeriesResult struct {
	Series BenchSeries `json:"series"`
	// Setup describes the set-up in a sentence.
	Setup string `json:"setup"`
	// Skipped says why the series did not run.
	Skipped string       `json:"skipped,omitempty"`
	Modes   []ModeResult `json:"modes,omitempty"`
}

// Mode returns the result of mode, if the series measured it.
func (s *SeriesResult) Mode(m lab.Mode) (ModeResult, bool) {
	if s == nil {
		return ModeResult{}, false
	}
	for _, r := range s.Modes {
		if r.Mode == m {
			return r, true
		}
	}
	return ModeResult{}, false
}

// IdleResult is the idle cost of one wgbird.
type IdleResult struct {
	Skipped  string        `json:"skipped,omitempty"`
	Peers    int           `json:"peers"`
	Interval time.Duration `json:"interval_ns"`
	Window   time.Duration `json:"window_ns"`
	// CPU is user + system time over the window (10 ms resolution).
	CPU time.Duration `json:"cpu_ns"`
	// PeakRSS is VmHWM at the end of the window (peak since start), and
	// RSS VmRSS then, in bytes.
	PeakRSS int64 `json:"peak_rss"`
	RSS     int64 `json:"rss"`
	// RSSAnon and RSSFile split RSS: anonymous memory (heap, stacks) and
	// file pages (mostly the binary's text, shared with every process
	// that maps it).
	RSSAnon int64 `json:"rss_anon"`
	RSSFile int64 `json:"rss_file"`
}

// CPUShare is the CPU time as a share of one core over the window.
func (r IdleResult) CPUShare() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.CPU) / float64(r.Window)
}

// Machine describes where the benchmark ran.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	Kernel    string `json:"kernel"`
	LoadStart string `json:"load_start"`
	LoadEnd   string `json:"load_end"`
	Bird      string `json:"bird"`
	WGGo      string `json:"wireguard_go"`
	ExaBGP    string `json:"exabgp"`
	Go        string `json:"go"`
}

// BenchResult is everything one benchmark run measured.
type BenchResult struct {
	Started    time.Time      `json:"started"`
	Took       time.Duration  `json:"took_ns"`
	Machine    Machine        `json:"machine"`
	Thresholds lab.Thresholds `json:"thresholds"`
	Server     string         `json:"server"`
	Reps       int            `json:"reps"`
	RefReps    int            `json:"ref_reps"`
	Bound      time.Duration  `json:"bound_ns"`
	Series     []SeriesResult `json:"series"`
	Idle       *IdleResult    `json:"idle,omitempty"`
	Client     *ClientResult  `json:"client,omitempty"`
	Reload     *ReloadResult  `json:"reload,omitempty"`
	GoBench    []GoBench      `json:"go_bench,omitempty"`
	// Command is how this run was started, for the README.
	Command string `json:"command"`
}

// SeriesOf returns the result of one series, nil if it was not run or
// was skipped.
func (r *BenchResult) SeriesOf(s BenchSeries) *SeriesResult {
	for i := range r.Series {
		if r.Series[i].Series == s && r.Series[i].Skipped == "" {
			return &r.Series[i]
		}
	}
	return nil
}

// GoBench is one line of `go test -bench` output.
type GoBench struct {
	Pkg         string  `json:"pkg"`
	Name        string  `json:"name"` // without the -GOMAXPROCS suffix
	Procs       int     `json:"procs"`
	Iterations  int64   `json:"iterations"`
	NsPerOp     float64 `json:"ns_per_op"`
	BytesPerOp  int64   `json:"bytes_per_op"`  // -1 without -benchmem
	AllocsPerOp int64   `json:"allocs_per_op"` // -1 without -benchmem
	// Integration: the benchmark is in a file built with the integration
	// tag (needs root and real binaries).
	Integration bool `json:"integration"`
}

// ParseGoBench reads `go test -bench` output: "pkg:" lines name the
// package of the benchmark lines that follow. Other lines are ignored.
func ParseGoBench(r io.Reader) ([]GoBench, error) {
	var out []GoBench
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || len(f)%2 != 0 {
			continue // "BenchmarkX" alone: a benchmark that failed or logged
		}
		b := GoBench{Pkg: pkg, Name: f[0], Procs: 1, BytesPerOp: -1, AllocsPerOp: -1}
		if i := strings.LastIndexByte(f[0], '-'); i > 0 {
			if n, err := strconv.Atoi(f[0][i+1:]); err == nil {
				b.Name, b.Procs = f[0][:i], n
			}
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		b.Iterations = n
		ok := false
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				b.NsPerOp, ok = v, true
			case "B/op":
				b.BytesPerOp = int64(v)
			case "allocs/op":
				b.AllocsPerOp = int64(v)
			}
		}
		if ok {
			out = append(out, b)
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("reading go test -bench output: %w", err)
	}
	return out, nil
}

// MarkIntegration sets Integration on benchmarks defined in a file with
// the integration build tag, looking for the files under root (the module
// root) by the package path relative to module.
func MarkIntegration(bs []GoBench, root, module string) {
	for i := range bs {
		rel, ok := strings.CutPrefix(bs[i].Pkg, module)
		if !ok {
			continue
		}
		dir := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(rel, "/")))
		top, _, _ := strings.Cut(bs[i].Name, "/")
		files, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			if strings.Contains(string(b), "\nfunc "+top+"(") {
				bs[i].Integration = hasIntegrationTag(string(b))
				break
			}
		}
	}
}

// hasIntegrationTag reports whether a Go file's build constraint names
// the integration tag.
func hasIntegrationTag(src string) bool {
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if c, ok := strings.CutPrefix(line, "//go:build "); ok {
			return slices.Contains(strings.FieldsFunc(c, func(r rune) bool {
				return !(r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
			}), "integration")
		}
		if line != "" && !strings.HasPrefix(line, "//") {
			return false
		}
	}
	return false
}

// Command returns the command that runs this one benchmark again.
func (b GoBench) Command(module string) string {
	pkg := "." + strings.TrimPrefix(b.Pkg, module)
	if !strings.HasPrefix(b.Pkg, module) {
		pkg = b.Pkg
	}
	parts := strings.Split(b.Name, "/")
	for i, p := range parts {
		parts[i] = "^" + p + "$"
	}
	cmd := fmt.Sprintf("go test -run '^$' -bench '%s' -benchmem %s", strings.Join(parts, "/"), pkg)
	if b.Integration {
		cmd = fmt.Sprintf("sudo go test -tags integration -run '^$' -bench '%s' -benchmem %s", strings.Join(parts, "/"), pkg)
	}
	return cmd
}

// ReplaceBlock returns doc with the part from BenchStartMarker to
// BenchEndMarker (inclusive) replaced by block, which carries the markers
// itself. A doc without the markers gets a "## Benchmarks" section with
// the block appended.
func ReplaceBlock(doc, block string) string {
	block = strings.TrimRight(block, "\n")
	i := strings.Index(doc, BenchStartMarker)
	j := strings.Index(doc, BenchEndMarker)
	if i >= 0 && j > i {
		return doc[:i] + block + doc[j+len(BenchEndMarker):]
	}
	if doc != "" && !strings.HasSuffix(doc, "\n") {
		doc += "\n"
	}
	return doc + "\n## Benchmarks\n\n" + block + "\n"
}

// FormatDuration formats a latency for the tables: "3.4 ms", "912 ms",
// "1.62 s".
func FormatDuration(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

// formatNs formats a Go benchmark's ns/op.
func formatNs(ns float64) string {
	switch {
	case ns < 1e3:
		return fmt.Sprintf("%.0f ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	case ns < 1e9:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	default:
		return fmt.Sprintf("%.2f s", ns/1e9)
	}
}

func formatBytes(b int64) string {
	switch {
	case b < 0:
		return "–"
	case b < 1<<10:
		return fmt.Sprintf("%d B", b)
	case b < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	default:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	}
}

// eventModes come with a netlink event that wgbird acts on at once: the
// floor + 20 ms target.
var eventModes = []lab.Mode{lab.Kill, lab.LinkDelete, lab.LinkDown, lab.VIPRemove}

// floorMode is the pseudo-mode of the floor series: `disable` sent to BIRD.
const floorMode lab.Mode = "bird-disable"

// cell formats a mode's withdrawal for the side-by-side table.
func withdrawCell(m ModeResult, ok bool, bound time.Duration) string {
	switch {
	case !ok:
		return "–"
	case m.NA != "":
		return "n/a"
	}
	k, n := m.Counts()
	switch {
	case n == 0:
		return fmt.Sprintf("error (%d of %d failed)", m.Errors(), len(m.Samples))
	case k == 0:
		return fmt.Sprintf("**not withdrawn** (0/%d in %s)", n, bound)
	}
	st := m.WithdrawStats()
	s := fmt.Sprintf("%s / %s", FormatDuration(st.P50), FormatDuration(st.P95))
	if k < n {
		s += fmt.Sprintf(" (%d/%d withdrawn)", k, n)
	}
	return s
}

// Markdown renders the result as the README block, markers included.
// module is the Go module path (for the benchmark commands).
func (r *BenchResult) Markdown(module string) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	// para writes a paragraph wrapped for the README's source.
	para := func(prefix, format string, a ...any) {
		b.WriteString(wrap(fmt.Sprintf(format, a...), 78, prefix))
		b.WriteString("\n")
	}
	th := r.Thresholds.Effective()
	m := r.Machine
	p("%s\n<!-- Written by `make bench` (wgbird-lab bench); edits between the markers are overwritten. -->\n\n", BenchStartMarker)
	para("", "Measured on %s by `%s` in %s: %s, %d cores, Linux %s, load average %s at the start and %s at the end; %s, %s, %s; wgbird built with %s.",
		r.Started.UTC().Format("2006-01-02"), r.Command, r.Took.Round(time.Minute), m.CPU, m.Cores, m.Kernel, m.LoadStart, m.LoadEnd,
		m.Bird, m.WGGo, orNone(m.ExaBGP, "no ExaBGP"), m.Go)
	p("\n")
	para("", "The lab is `wgbird-lab`'s: a router and two servers in network namespaces, BGP with BFD (100 ms × 5) between them. "+
		"Faults are injected on %s. Every time is read from the router's kernel route to %s through a netlink subscription in the router's namespace, on the clock of the process that injects the fault: "+
		"**withdraw** is the time from the fault until %s's nexthop leaves that route, **return** the time from the start of the heal until it is back. "+
		"Faults come at a random point of the check interval; percentiles are nearest-rank.",
		r.Server, lab.VIPPrefix, serverAddr(r.Server))
	p("\n")

	wg := r.SeriesOf(SeriesWgbird)
	if wg != nil {
		p("#### wgbird at its defaults (interval %s, rise %d, fall %d), N = %d\n\n", th.Interval, th.Rise, th.Fall, r.Reps)
		p("| fault | withdrawn | withdraw min | p50 | p95 | max | return min | p50 | p95 | max |\n")
		p("|---|---|---|---|---|---|---|---|---|---|\n")
		for _, mr := range wg.Modes {
			name := string(mr.Mode)
			if mr.Mode == lab.KeyRotate {
				name += " ¹"
			}
			if mr.NA != "" {
				p("| %s | n/a: %s | | | | | | | | |\n", name, mr.NA)
				continue
			}
			k, n := mr.Counts()
			ws, rs := mr.WithdrawStats(), mr.ReturnStats()
			p("| %s | %d/%d%s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, k, n, errNote(mr),
				durOrDash(ws.Min, ws.N), durOrDash(ws.P50, ws.N), durOrDash(ws.P95, ws.N), durOrDash(ws.Max, ws.N),
				durOrDash(rs.Min, rs.N), durOrDash(rs.P50, rs.N), durOrDash(rs.P95, rs.N), durOrDash(rs.Max, rs.N))
		}
		p("\n")
		if _, ok := wg.Mode(lab.KeyRotate); ok {
			para("", "¹ key-rotate with `[service.probe]` added to the config: only the active probe notices it.")
			p("\n")
		}
		para("", "Set-up: %s One row again: `sudo bin/wgbird-lab bench --wgbird bin/wgbird --series wgbird --modes MODE --reps %d` (after `make build`).", wg.Setup, r.Reps)
		p("\n")
	}

	floor := r.SeriesOf(SeriesFloor)
	bird := r.SeriesOf(SeriesBird)
	exa := r.SeriesOf(SeriesExaBGP)
	ospf := r.SeriesOf(SeriesOSPF)
	if bird != nil || exa != nil || floor != nil || ospf != nil {
		p("#### Side by side: withdraw p50 / p95\n\n")
		p("| fault | wgbird | wgbird over OSPF | BIRD + BFD alone | ExaBGP healthcheck |\n|---|---|---|---|---|\n")
		for _, mode := range r.modes() {
			wm, wok := wg.Mode(mode)
			om, ook := ospf.Mode(mode)
			bm, bok := bird.Mode(mode)
			em, eok := exa.Mode(mode)
			p("| %s | %s | %s | %s | %s |\n", mode, withdrawCell(wm, wok, r.Bound), withdrawCell(om, ook, r.Bound), withdrawCell(bm, bok, r.Bound), withdrawCell(em, eok, r.Bound))
		}
		p("\n")
		para("", "\"not withdrawn\": %s's nexthop was still there %s after the fault in every try (a mode stops after %d such tries); n/a: the mode does not apply. The references ran %d repetitions per mode.",
			r.Server, r.Bound, giveUpAfter, r.RefReps)
		p("\n")
		if fm, ok := floor.Mode(floorMode); ok {
			ws, rs := fm.WithdrawStats(), fm.ReturnStats()
			k, n := fm.Counts()
			para("", "The floor, what BIRD needs by itself: `disable \"%s\"` sent straight to %s's BIRD socket withdraws in %s p50 / %s p95 (min %s, max %s; %d/%d), and `enable` brings the nexthop back in %s p50 / %s p95. wgbird's overhead on an event is its time minus this.",
				lab.Protocol, r.Server, durOrDash(ws.P50, ws.N), durOrDash(ws.P95, ws.N), durOrDash(ws.Min, ws.N), durOrDash(ws.Max, ws.N), k, n,
				durOrDash(rs.P50, rs.N), durOrDash(rs.P95, rs.N))
			p("\n")
		}
		for _, s := range r.Series {
			if s.Series == SeriesWgbird || s.Series == SeriesIdle {
				continue
			}
			if s.Skipped != "" {
				para("  ", "- %s: not measured: %s", seriesTitle(s.Series), s.Skipped)
				continue
			}
			para("  ", "- %s: %s Again: `sudo bin/wgbird-lab bench --wgbird bin/wgbird --series %s --reps %d`.", seriesTitle(s.Series), s.Setup, s.Series, r.RefReps)
		}
		p("\n")
	}

	if wg != nil {
		if ts := r.Targets(); len(ts) > 0 {
			p("#### Against the targets\n\n| target | measured | |\n|---|---|---|\n")
			for _, t := range ts {
				p("| %s | %s | %s |\n", t.Target, t.Measured, t.Verdict)
			}
			p("\n")
		}
	}

	r.Client.markdown(&b)

	if id := r.Idle; id != nil {
		p("#### Idle cost of `wgbird run`\n\n")
		if id.Skipped != "" {
			para("", "Not measured: %s", id.Skipped)
		} else {
			para("", "One service on a wireguard-go device with %d peers, interval %s and wgbird's defaults otherwise (run as an operator runs it, without --pprof), BIRD answering; over %s after a 5 s warm-up. CPU is user + system time from /proc (10 ms resolution), RSS the peak since start (VmHWM).",
				id.Peers, id.Interval, id.Window.Round(time.Second))
			p("\n| | measured | target | |\n|---|---|---|---|\n")
			p("| CPU | %.2f s in %s: %.3f %% of one core | under 0.1 %% | %s |\n", id.CPU.Seconds(), id.Window.Round(time.Second), 100*id.CPUShare(), verdict(id.CPUShare() < 0.001))
			p("| peak RSS | %.1f MB (at the end %.1f MB: %.1f MB anonymous, %.1f MB file pages) | under 14 MB, under 5 MB anonymous | %s |\n",
				float64(id.PeakRSS)/1e6, float64(id.RSS)/1e6, float64(id.RSSAnon)/1e6, float64(id.RSSFile)/1e6, verdict(id.PeakRSS < 14e6 && id.RSSAnon < 5e6))
			p("\n")
			para("", "Again: `sudo bin/wgbird-lab bench --wgbird bin/wgbird --series idle`.")
		}
		p("\n")
	}

	if rows := r.DetectionRows(module); len(rows) > 0 {
		p("#### Detection and cost (issue 14)\n\n| what | measured | target | | again |\n|---|---|---|---|---|\n")
		for _, row := range rows {
			p("| %s | %s | %s | %s | `%s` |\n", row.What, row.Measured, row.Target, row.Verdict, row.Command)
		}
		p("\n")
	}

	if len(r.GoBench) > 0 {
		p("#### Go benchmarks\n\n| benchmark | time/op | B/op | allocs/op | again |\n|---|---|---|---|---|\n")
		for _, gb := range r.GoBench {
			allocs := "–"
			if gb.AllocsPerOp >= 0 {
				allocs = strconv.FormatInt(gb.AllocsPerOp, 10)
			}
			p("| %s (%s) | %s | %s | %s | `%s` |\n", strings.TrimPrefix(gb.Name, "Benchmark"), strings.TrimPrefix(strings.TrimPrefix(gb.Pkg, module), "/"),
				formatNs(gb.NsPerOp), formatBytes(gb.BytesPerOp), allocs, gb.Command(module))
		}
		p("\n")
	}
	p("%s\n", BenchEndMarker)
	return b.String()
}

// wrap breaks text into lines of at most width columns where it can, at
// spaces outside `code spans`, each line after the first indented by
// indent.
func wrap(text string, width int, indent string) string {
	var words []string
	var cur strings.Builder
	inCode := false
	for _, r := range text {
		switch {
		case r == '`':
			inCode = !inCode
			cur.WriteRune(r)
		case r == ' ' && !inCode:
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	var b strings.Builder
	col := 0
	for _, w := range words {
		n := len([]rune(w))
		switch {
		case col == 0:
		case col+1+n > width:
			b.WriteString("\n" + indent)
			col = len(indent)
		default:
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += n
	}
	return b.String()
}

// modes returns every mode any series measured, in BenchModes order.
func (r *BenchResult) modes() []lab.Mode {
	var out []lab.Mode
	for _, m := range BenchModes {
		for _, s := range r.Series {
			if _, ok := s.Mode(m); ok && s.Skipped == "" {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// TargetResult is one target of issue 9, judged.
type TargetResult struct {
	Target, Measured, Verdict string
}

// Targets judges the result against the targets (reported, never
// asserted).
func (r *BenchResult) Targets() []TargetResult {
	var out []TargetResult
	wg := r.SeriesOf(SeriesWgbird)
	if wg == nil {
		return nil
	}
	th := r.Thresholds.Effective()
	if fm, ok := r.SeriesOf(SeriesFloor).Mode(floorMode); ok && fm.WithdrawStats().N > 0 {
		floor := fm.WithdrawStats().P50
		limit := floor + 20*time.Millisecond
		var parts []string
		all := true
		for _, mode := range eventModes {
			mr, ok := wg.Mode(mode)
			if !ok || mr.NA != "" {
				continue
			}
			st := mr.WithdrawStats()
			k, n := mr.Counts()
			if st.N == 0 || k < n {
				parts = append(parts, fmt.Sprintf("%s %d/%d withdrawn", mode, k, n))
				all = false
				continue
			}
			parts = append(parts, fmt.Sprintf("%s %s", mode, FormatDuration(st.P50)))
			all = all && st.P50 <= limit
		}
		if len(parts) > 0 {
			out = append(out, TargetResult{
				Target:   fmt.Sprintf("event modes withdrawn within the floor + 20 ms at p50 (%s + 20 ms = %s)", FormatDuration(floor), FormatDuration(limit)),
				Measured: strings.Join(parts, ", "),
				Verdict:  verdict(all),
			})
		}
	}
	if mr, ok := wg.Mode(lab.Hang); ok && mr.NA == "" {
		st := mr.WithdrawStats()
		k, n := mr.Counts()
		out = append(out, TargetResult{
			Target:   "hung wireguard-go withdrawn within 0.7 s at p50, 1.0 s at p95",
			Measured: fmt.Sprintf("p50 %s, p95 %s (%d/%d withdrawn)", durOrDash(st.P50, st.N), durOrDash(st.P95, st.N), k, n),
			Verdict:  verdict(st.N > 0 && k == n && st.P50 <= 700*time.Millisecond && st.P95 <= time.Second),
		})
	}
	for _, ref := range []BenchSeries{SeriesBird, SeriesExaBGP} {
		rs := r.SeriesOf(ref)
		if rs == nil {
			continue
		}
		var slower []string
		compared := 0
		for _, mode := range BenchModes {
			wm, ok1 := wg.Mode(mode)
			rm, ok2 := rs.Mode(mode)
			if !ok1 || !ok2 || wm.NA != "" || rm.NA != "" {
				continue
			}
			compared++
			wk, wn := wm.Counts()
			rk, rn := rm.Counts()
			if rn == 0 || wn == 0 {
				continue
			}
			wst, rst := wm.WithdrawStats(), rm.WithdrawStats()
			switch {
			case wk < wn && rk == rn:
				slower = append(slower, fmt.Sprintf("%s (wgbird %d/%d withdrawn)", mode, wk, wn))
			case rk == 0 || wst.N == 0:
			case wst.P50 > rst.P50:
				slower = append(slower, fmt.Sprintf("%s (+%s at p50)", mode, FormatDuration(wst.P50-rst.P50)))
			}
		}
		if compared == 0 {
			continue
		}
		m := "as fast or faster in every mode"
		if len(slower) > 0 {
			m = "slower in " + strings.Join(slower, ", ")
		}
		out = append(out, TargetResult{
			Target:   "every mode at least as fast as " + seriesTitle(ref) + " (p50)",
			Measured: m,
			Verdict:  verdict(len(slower) == 0),
		})
	}
	limit := time.Duration(th.Rise)*th.Interval + 100*time.Millisecond
	var p50s, over []string
	all := true
	worst := time.Duration(0)
	for _, mr := range wg.Modes {
		st := mr.ReturnStats()
		if st.N == 0 {
			continue
		}
		worst = max(worst, st.P50)
		if st.P50 > limit {
			p50s = append(p50s, fmt.Sprintf("%s %s", mr.Mode, FormatDuration(st.P50)))
			all = false
		}
		if st.Max > limit {
			over = append(over, fmt.Sprintf("%s %s", mr.Mode, FormatDuration(st.Max)))
		}
	}
	if worst > 0 {
		m := fmt.Sprintf("slowest p50 %s", FormatDuration(worst))
		if len(p50s) > 0 {
			m = "p50 over in " + strings.Join(p50s, ", ")
		}
		if len(over) > 0 {
			m += "; max over in " + strings.Join(over, ", ")
		} else {
			m += "; every max within"
		}
		out = append(out, TargetResult{
			Target:   fmt.Sprintf("return after heal within rise × interval + 100 ms (%s) at p50", FormatDuration(limit)),
			Measured: m,
			Verdict:  verdict(all),
		})
	}
	return out
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

func durOrDash(d time.Duration, n int) string {
	if n == 0 {
		return "–"
	}
	return FormatDuration(d)
}

func errNote(m ModeResult) string {
	if e := m.Errors(); e > 0 {
		return fmt.Sprintf(" (%d failed)", e)
	}
	return ""
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

func serverAddr(name string) string {
	if s, err := lab.ServerByName(name); err == nil {
		return s.Addr.String()
	}
	return name
}

func seriesTitle(s BenchSeries) string {
	switch s {
	case SeriesWgbird:
		return "wgbird"
	case SeriesFloor:
		return "the floor (BIRD's socket)"
	case SeriesBird:
		return "BIRD + BFD alone"
	case SeriesExaBGP:
		return "ExaBGP's healthcheck"
	case SeriesOSPF:
		return "wgbird over OSPF"
	case SeriesIdle:
		return "idle cost"
	case SeriesClient:
		return "the client's view"
	case SeriesReload:
		return "BIRD reload on a healthy server"
	}
	return string(s)
}
