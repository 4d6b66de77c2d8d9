package labbench

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wgbird/wgbird/internal/lab"
	"github.com/wgbird/wgbird/internal/labjudge"
	"github.com/wgbird/wgbird/internal/labproc"
)

// The client's view: what the people behind the tunnel feel of a
// failover. The client pings through its tunnel every 100 ms (labjudge.Pinger)
// through the home network's NAT while a fault withdraws its server and
// a heal brings it back; the idle client starts sending only after the
// route has moved. One repetition of hang and kill per takeover setting
// is also kept whole as a Timeline, for the pictures.

// SeriesClient is the client's-view series.
const SeriesClient BenchSeries = "client"

// ClientModes are the faults the client series measures by default.
var ClientModes = []lab.Mode{lab.Hang, lab.Kill, lab.LinkDelete, lab.Drain}

// TimelineModes are the modes whose first repetition is kept as a
// Timeline.
var TimelineModes = []lab.Mode{lab.Hang, lab.Kill}

// clientBound is how long a repetition waits for the tunnel to answer
// again: well past WireGuard's 15 s re-handshake.
const clientBound = 25 * time.Second

// failbackWindow is how long the client keeps pinging after its server's
// nexthop is back, for the failback outage.
const failbackWindow = 3 * time.Second

// idleStart is when the idle client starts sending, after the withdrawal.
const idleStart = 500 * time.Millisecond

// ClientSample is one repetition seen by the clients.
type ClientSample struct {
	// Withdraw and Return are the route's, as in Sample.
	Withdraw time.Duration `json:"withdraw_ns"`
	Return   time.Duration `json:"return_ns"`
	// Failover is the client's outage around the fault (the longest run
	// of unanswered pings from the fault until the tunnel answered
	// again), Failback the one after the heal; 0 when no ping was lost.
	Failover     time.Duration `json:"failover_ns"`
	FailoverLost int           `json:"failover_lost"`
	Failback     time.Duration `json:"failback_ns"`
	FailbackLost int           `json:"failback_lost"`
	// IdleWait is how long the idle client, starting to send after the
	// withdrawal, waited for its first answer.
	IdleWait time.Duration `json:"idle_wait_ns,omitempty"`
	// IdleExpired: the idle client's NAT mapping was removed after the
	// withdrawal, as if it had outlived the router's timeout (every
	// second repetition).
	IdleExpired bool `json:"idle_expired,omitempty"`
	// Pinned: after the repetition the client's endpoint was not the
	// router's public address (Endpoint) any more.
	Pinned   bool   `json:"pinned,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	Err      string `json:"err,omitempty"`
}

// ClientModeResult is one mode of the client series with takeover on or
// off.
type ClientModeResult struct {
	Mode     lab.Mode       `json:"mode"`
	Takeover bool           `json:"takeover"`
	Note     string         `json:"note,omitempty"`
	Samples  []ClientSample `json:"samples,omitempty"`
}

func (m ClientModeResult) stats(f func(ClientSample) (time.Duration, bool)) Stats {
	var ds []time.Duration
	for _, s := range m.Samples {
		if s.Err != "" {
			continue
		}
		if d, ok := f(s); ok {
			ds = append(ds, d)
		}
	}
	return Summarize(ds)
}

// FailoverStats, FailbackStats, IdleStats, WithdrawStats summarise the
// valid samples.
func (m ClientModeResult) FailoverStats() Stats {
	return m.stats(func(s ClientSample) (time.Duration, bool) { return s.Failover, true })
}
func (m ClientModeResult) FailbackStats() Stats {
	return m.stats(func(s ClientSample) (time.Duration, bool) { return s.Failback, true })
}
func (m ClientModeResult) IdleStats() Stats {
	return m.stats(func(s ClientSample) (time.Duration, bool) { return s.IdleWait, s.IdleWait > 0 && !s.IdleExpired })
}

// IdleExpiredStats summarises the idle waits of the repetitions where the
// idle client's mapping had expired.
func (m ClientModeResult) IdleExpiredStats() Stats {
	return m.stats(func(s ClientSample) (time.Duration, bool) { return s.IdleWait, s.IdleWait > 0 && s.IdleExpired })
}
func (m ClientModeResult) WithdrawStats() Stats {
	return m.stats(func(s ClientSample) (time.Duration, bool) { return s.Withdraw, true })
}

// Pinned counts the valid samples after which the client was pinned off
// the VIP.
func (m ClientModeResult) Pinned() (pinned, valid int) {
	for _, s := range m.Samples {
		if s.Err == "" {
			valid++
			if s.Pinned {
				pinned++
			}
		}
	}
	return pinned, valid
}

// ClientResult is the client series.
type ClientResult struct {
	Setup string `json:"setup"`
	// TakeoverNA says why takeover "on" was not measured ("" when it was).
	TakeoverNA string             `json:"takeover_na,omitempty"`
	Reps       int                `json:"reps"`
	Modes      []ClientModeResult `json:"modes,omitempty"`
	Timelines  []Timeline         `json:"timelines,omitempty"`
	// Pictures are the timelines as drawn by the caller (cmd/wgbird-lab).
	Pictures []Picture `json:"pictures,omitempty"`
	Skipped  string    `json:"skipped,omitempty"`
}

// Mode returns the result of mode with takeover on or off.
func (r *ClientResult) Mode(m lab.Mode, takeover bool) (ClientModeResult, bool) {
	if r == nil {
		return ClientModeResult{}, false
	}
	for _, x := range r.Modes {
		if x.Mode == m && x.Takeover == takeover {
			return x, true
		}
	}
	return ClientModeResult{}, false
}

// Timeline is one failover and its return as measured: the router's
// nexthops, the client's echoes and wgbird's transitions, on one clock.
type Timeline struct {
	Mode     lab.Mode  `json:"mode"`
	Takeover bool      `json:"takeover"`
	Server   string    `json:"server"`
	Fault    time.Time `json:"fault"`
	Heal     time.Time `json:"heal"`
	End      time.Time `json:"end"`
	// Nexthops: the state at Fault-1s and every change until End.
	Nexthops    []labjudge.Change `json:"nexthops"`
	Echoes      []labjudge.Echo   `json:"echoes"`
	Transitions []Transition      `json:"transitions"`
}

// Transition is one line of a wgbird's log that changed its state.
type Transition struct {
	At     time.Time `json:"at"`
	Server string    `json:"server"`
	Text   string    `json:"text"`
}

// ParseTransitions reads wgbird's log (slog text) and returns its
// transitions and takeovers in [from, to].
func ParseTransitions(server, log string, from, to time.Time) []Transition {
	var out []Transition
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		kv := parseLogfmt(sc.Text())
		msg := kv["msg"]
		if msg != "transition" && !strings.Contains(msg, "takeover") {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, kv["time"])
		if err != nil || at.Before(from) || at.After(to) {
			continue
		}
		text := msg
		if msg == "transition" {
			text = kv["to"]
			if r := kv["reason"]; r != "" {
				text += ": " + r
			}
		}
		out = append(out, Transition{At: at, Server: server, Text: text})
	}
	return out
}

// parseLogfmt splits a slog text line into its keys and values.
func parseLogfmt(line string) map[string]string {
	kv := map[string]string{}
	for len(line) > 0 {
		line = strings.TrimLeft(line, " ")
		eq := strings.IndexByte(line, '=')
		if eq <= 0 {
			break
		}
		key := line[:eq]
		line = line[eq+1:]
		var val string
		if strings.HasPrefix(line, `"`) {
			// A quoted value: find its closing quote.
			end := 1
			for end < len(line) && line[end] != '"' {
				if line[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(line) {
				end = len(line) - 1
			}
			if v, err := strconv.Unquote(line[:end+1]); err == nil {
				val = v
			} else {
				val = line[1:end]
			}
			line = line[min(end+1, len(line)):]
		} else {
			sp := strings.IndexByte(line, ' ')
			if sp < 0 {
				sp = len(line)
			}
			val, line = line[:sp], line[sp:]
		}
		kv[key] = val
	}
	return kv
}

// runClient is the client series: for each takeover setting, each mode,
// reps repetitions.
func (b *bench) runClient(ctx context.Context) *ClientResult {
	l := b.l
	th := l.Config().Thresholds.Effective()
	r := &ClientResult{Reps: b.cfg.ClientReps,
		Setup: fmt.Sprintf("The lab's home network: the router port-forwards 198.18.0.1:%d to the VIP; the client (keepalive %d s) pings 100.64.0.1 through its tunnel every %s, the idle client (keepalive %d s) starts %s after the withdrawal. Faults on %s, where the router's hash sends both; wgbird on both servers with the lab's config (interval %s, rise %d, fall %d); takeover on is wgbird's default (VIP-sourced packets and session takeover in the group of both servers), off is `takeover = false` and `vip_source = false`.",
			lab.ListenPort, lab.KeepaliveSeconds, labjudge.PingInterval, lab.IdleKeepaliveSeconds, idleStart, b.srv.Name, th.Interval, th.Rise, th.Fall)}
	for _, c := range []string{"client", "idle"} {
		if home, err := l.HomeServer(c); err != nil || home.Name != b.srv.Name {
			r.Skipped = fmt.Sprintf("%s is not placed on %s (%v)", c, b.srv.Name, err)
			return r
		}
	}
	for _, takeover := range []bool{false, true} {
		// wgbird on both servers with the lab's own config, continuity
		// off or on (the wgbird series left the bench config on the
		// bench server).
		l.SetTakeover(takeover)
		for _, s := range l.Servers() {
			if pid := l.WgbirdPid(s.Name); pid > 0 {
				if err := labproc.StopPid(ctx, pid, syscall.SIGTERM, 5*time.Second); err != nil {
					r.Skipped = err.Error()
					return r
				}
			}
			if err := l.Heal(ctx, s.Name); err != nil {
				r.Skipped = err.Error()
				return r
			}
		}
		for _, mode := range b.cfg.ClientModes {
			if ctx.Err() != nil {
				return r
			}
			mr := ClientModeResult{Mode: mode, Takeover: takeover}
			for i := range b.cfg.ClientReps {
				keep := i == 0 && (b.cfg.KeepTimelines || slices.Contains(TimelineModes, mode))
				smp, tl := b.clientRep(ctx, mode, keep, i%2 == 1)
				if tl != nil {
					tl.Takeover = takeover
					r.Timelines = append(r.Timelines, *tl)
				}
				mr.Samples = append(mr.Samples, smp)
				b.clientProgress(mode, takeover, i+1, b.cfg.ClientReps, smp)
				if ctx.Err() != nil {
					break
				}
			}
			r.Modes = append(r.Modes, mr)
		}
	}
	return r
}

func (b *bench) clientProgress(mode lab.Mode, takeover bool, i, n int, s ClientSample) {
	to := "off"
	if takeover {
		to = "on"
	}
	if s.Err != "" {
		fmt.Fprintf(b.out, "   client  %-11s takeover %-3s %2d/%-2d error: %s\n", mode, to, i, n, s.Err)
		return
	}
	pinned := ""
	if s.Pinned {
		pinned = " PINNED to " + s.Endpoint
	}
	fmt.Fprintf(b.out, "   client  %-11s takeover %-3s %2d/%-2d withdrawn %-8s outage %-8s (%d lost) idle waits %-8s back %-8s failback outage %-8s%s\n",
		mode, to, i, n, FormatDuration(s.Withdraw), FormatDuration(s.Failover), s.FailoverLost, FormatDuration(s.IdleWait),
		FormatDuration(s.Return), FormatDuration(s.Failback), pinned)
}

// clientRep is one repetition: both clients fresh on the bench server,
// the fault, the tunnel back, the heal, the return.
func (b *bench) clientRep(ctx context.Context, mode lab.Mode, keep, expire bool) (ClientSample, *Timeline) {
	s := ClientSample{IdleExpired: expire}
	l, srv := b.l, b.srv
	fail := func(err error) (ClientSample, *Timeline) {
		s.Err = err.Error()
		_ = l.Heal(ctx, srv.Name)
		return s, nil
	}
	if err := l.WaitRouted(ctx, returnBound); err != nil {
		return fail(err)
	}
	for _, c := range []string{"client", "idle"} {
		// Afresh on every side: the last repetition may have left the
		// client on the other server, a server with its session or an
		// endpoint it found itself, the router with a mapping of a
		// server's own address.
		if err := l.ResetClient(ctx, c); err != nil {
			return fail(err)
		}
		if err := l.WaitClient(ctx, c, 20*time.Second); err != nil {
			return fail(err)
		}
	}
	p, err := l.StartPinger("client", labjudge.PingInterval)
	if err != nil {
		return fail(err)
	}
	stopped := false
	stop := func() []labjudge.Echo {
		if !stopped {
			stopped = true
			return p.Stop()
		}
		return p.Echoes()
	}
	defer stop()
	if err := sleepCtx(ctx, time.Second+rand.N(l.Config().Thresholds.Effective().Interval)); err != nil {
		return fail(err)
	}
	t0, err := l.Fail(ctx, srv.Name, mode)
	if err != nil {
		return fail(err)
	}
	wctx, cancel := context.WithTimeout(ctx, b.cfg.Bound)
	c, err := b.w.WaitFor(wctx, t0, labjudge.Lacks(srv.Addr))
	cancel()
	if err != nil {
		return fail(fmt.Errorf("not withdrawn: %w", err))
	}
	s.Withdraw = c.At.Sub(t0)
	if expire {
		if err := l.ForgetMappings("idle"); err != nil {
			return fail(err)
		}
	}
	// The idle client starts sending after the route moved.
	if err := sleepCtx(ctx, idleStart); err != nil {
		return fail(err)
	}
	ip, err := l.StartPinger("idle", labjudge.PingInterval)
	if err != nil {
		return fail(err)
	}
	idle0 := time.Now()
	wctx, cancel = context.WithTimeout(ctx, clientBound)
	back, err := p.WaitAnswered(wctx, c.At)
	if err == nil {
		var ie labjudge.Echo
		ie, err = ip.WaitAnswered(wctx, idle0)
		s.IdleWait = ie.Sent.Sub(idle0)
	}
	cancel()
	ip.Stop()
	if err != nil {
		return fail(fmt.Errorf("the tunnel did not answer again: %w", err))
	}
	o := labjudge.LongestOutage(p.Echoes(), t0, back.Sent.Add(time.Millisecond))
	s.Failover, s.FailoverLost = o.Duration(), o.Lost
	h0 := time.Now()
	if err := l.Heal(ctx, srv.Name); err != nil {
		return fail(err)
	}
	wctx, cancel = context.WithTimeout(ctx, returnBound)
	c, err = b.w.WaitFor(wctx, h0, labjudge.Has(srv.Addr))
	cancel()
	if err != nil {
		return fail(fmt.Errorf("not back: %w", err))
	}
	s.Return = c.At.Sub(h0)
	// Failback: ping on for failbackWindow after the return; an outage
	// that started is waited out (up to clientBound).
	if err := sleepCtx(ctx, failbackWindow); err != nil {
		return fail(err)
	}
	if open := labjudge.LongestOutage(p.Echoes(), h0, time.Time{}); open.Lost > 0 && open.To.IsZero() {
		wctx, cancel = context.WithTimeout(ctx, clientBound)
		_, err = p.WaitAnswered(wctx, time.Now())
		cancel()
		if err != nil {
			return fail(fmt.Errorf("the tunnel did not answer after the return: %w", err))
		}
	}
	echoes := stop()
	end := time.Now()
	fo := labjudge.LongestOutage(echoes, h0, end)
	s.Failback, s.FailbackLost = fo.Duration(), fo.Lost
	ep, err := l.ClientEndpoint(ctx, "client")
	if err != nil {
		return fail(err)
	}
	s.Endpoint = ep.String()
	s.Pinned = ep != l.Endpoint()
	if !keep {
		return s, nil
	}
	tl := &Timeline{Mode: mode, Server: srv.Name, Fault: t0, Heal: h0, End: end,
		Nexthops: b.w.During(t0.Add(-time.Second), end), Echoes: echoes}
	for _, x := range l.Servers() {
		if log, err := os.ReadFile(l.WgbirdLog(x.Name)); err == nil {
			tl.Transitions = append(tl.Transitions, ParseTransitions(x.Name, string(log), t0.Add(-time.Second), end)...)
		}
	}
	slices.SortFunc(tl.Transitions, func(a, b Transition) int { return a.At.Compare(b.At) })
	return s, tl
}

// ClientTarget is the targets of issue 13, reported, never asserted.
const (
	targetFailoverSlack = 200 * time.Millisecond // over the route's withdraw, p50
	targetFailback      = 200 * time.Millisecond
	targetIdle          = time.Second
)

// clientMarkdown writes the client's-view section of the README block.
func (r *ClientResult) markdown(b *strings.Builder) {
	if r == nil {
		return
	}
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	para := func(prefix, format string, a ...any) {
		b.WriteString(wrap(fmt.Sprintf(format, a...), 78, prefix))
		b.WriteString("\n")
	}
	p("#### The client's view: outage through the home network's NAT, N = %d\n\n", r.Reps)
	if r.Skipped != "" {
		para("", "Not measured: %s", r.Skipped)
		p("\n")
		return
	}
	para("", "%s **outage** is the time from the first unanswered ping to the next answered one (a reply later than %s counts as lost): **failover** around the fault, **failback** after the heal; **idle waits** is the time from the idle client's first ping to its first answered one; in every second repetition the router's mapping of the idle client is removed after the withdrawal, as if it had outlived the router's UDP timeout (30 s for a client that only sends keepalives). p50 / p95, nearest-rank.", r.Setup, labjudge.LateReply)
	p("\n")
	if r.TakeoverNA != "" {
		para("", "Takeover on: not measured: %s.", r.TakeoverNA)
		p("\n")
	}
	p("| fault | route withdraw p50 | failover outage off | on | failback outage off | on | idle waits off | on | idle, mapping expired, off | on | pinned off the VIP |\n")
	p("|---|---|---|---|---|---|---|---|---|---|---|\n")
	var modes []lab.Mode
	for _, m := range r.Modes {
		if !slices.Contains(modes, m.Mode) {
			modes = append(modes, m.Mode)
		}
	}
	cell := func(s Stats) string {
		if s.N == 0 {
			return "–"
		}
		return FormatDuration(s.P50) + " / " + FormatDuration(s.P95)
	}
	var targets []string
	for _, mode := range modes {
		off, _ := r.Mode(mode, false)
		on, onOK := r.Mode(mode, true)
		var pins []string
		for _, m := range []ClientModeResult{off, on} {
			if k, n := m.Pinned(); n > 0 {
				to := "off"
				if m.Takeover {
					to = "on"
				}
				pins = append(pins, fmt.Sprintf("%s %d/%d", to, k, n))
			}
		}
		pin := strings.Join(pins, ", ") + " "
		onCell := func(f func(ClientModeResult) Stats) string {
			if !onOK {
				return "–"
			}
			return cell(f(on))
		}
		errs := ""
		for _, m := range []ClientModeResult{off, on} {
			for _, s := range m.Samples {
				if s.Err != "" {
					errs = fmt.Sprintf(" (%d failed)", countErrs(off)+countErrs(on))
				}
			}
		}
		p("| %s%s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s|\n", mode, errs, durOrDash(off.WithdrawStats().P50, off.WithdrawStats().N),
			cell(off.FailoverStats()), onCell(ClientModeResult.FailoverStats),
			cell(off.FailbackStats()), onCell(ClientModeResult.FailbackStats),
			cell(off.IdleStats()), onCell(ClientModeResult.IdleStats),
			cell(off.IdleExpiredStats()), onCell(ClientModeResult.IdleExpiredStats), pin)
		for _, m := range []ClientModeResult{off, on} {
			if m.Mode == "" || (m.Takeover && !onOK) {
				continue
			}
			to := "off"
			if m.Takeover {
				to = "on"
			}
			w, fo, fb, id := m.WithdrawStats(), m.FailoverStats(), m.FailbackStats(), m.IdleStats()
			if fo.N > 0 {
				targets = append(targets, fmt.Sprintf("| %s, takeover %s: failover outage ≤ withdraw + %s (p50) | %s vs %s + %s | %s |", mode, to, FormatDuration(targetFailoverSlack),
					FormatDuration(fo.P50), FormatDuration(w.P50), FormatDuration(targetFailoverSlack), verdict(fo.P50 <= w.P50+targetFailoverSlack)))
			}
			if fb.N > 0 {
				targets = append(targets, fmt.Sprintf("| %s, takeover %s: failback outage ≤ %s | p50 %s, p95 %s | %s |", mode, to, FormatDuration(targetFailback),
					FormatDuration(fb.P50), FormatDuration(fb.P95), verdict(fb.P95 <= targetFailback)))
			}
			if id.N > 0 {
				targets = append(targets, fmt.Sprintf("| %s, takeover %s: idle client waits ≤ %s | p50 %s, p95 %s | %s |", mode, to, FormatDuration(targetIdle),
					FormatDuration(id.P50), FormatDuration(id.P95), verdict(id.P95 <= targetIdle)))
			}
		}
	}
	p("\n")
	if len(targets) > 0 {
		p("| target (issue 13) | measured | |\n|---|---|---|\n%s\n\n", strings.Join(targets, "\n"))
	}
	para("", "Again: `sudo bin/wgbird-lab bench --wgbird bin/wgbird --series client --client-reps %d`; one failover as a picture: `sudo bin/wgbird-lab timeline --wgbird bin/wgbird --mode hang`.", r.Reps)
	p("\n")
	for _, pic := range r.Pictures {
		p("![%s](%s)\n\n", pic.Title, pic.Path)
	}
}

// Picture is a timeline drawn into a file README shows.
type Picture struct {
	Title string `json:"title"`
	Path  string `json:"path"` // relative to README
}

func countErrs(m ClientModeResult) int {
	n := 0
	for _, s := range m.Samples {
		if s.Err != "" {
			n++
		}
	}
	return n
}
