package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/wgbird/wgbird/internal/labjudge"
)

// Faults beyond the Modes, for the fault tests and the soak: BIRD killed
// or hung, wgbird hung or restarted, wireguard-go restarted bare, link
// storms; and what a test measures of a wgbird (goroutines, fds, RSS,
// metrics, UAPI reads in flight).

// StartBird starts node's BIRD unless it runs (continuing it if it was
// stopped) and waits until its control socket answers.
func (l *Lab) StartBird(ctx context.Context, node string) error { return l.startBird(ctx, node) }

// KillBird kills node's BIRD with SIGKILL, as a crash would: its control
// socket file stays behind, refusing connections.
func (l *Lab) KillBird(ctx context.Context, node string) error {
	pid := pidOf(l.path(node, "bird.pid"), "bird")
	if pid == 0 {
		return fmt.Errorf("BIRD is not running on %s", node)
	}
	return stopPid(ctx, pid, syscall.SIGKILL, 0)
}

// HangBird stops node's BIRD with SIGSTOP: its control socket accepts
// connections and never answers, and its BGP and BFD go silent.
// ContinueBird (or Heal) resumes it.
func (l *Lab) HangBird(node string) error {
	return l.signal("bird.pid", "bird", node, syscall.SIGSTOP)
}

// ContinueBird resumes a BIRD that HangBird stopped.
func (l *Lab) ContinueBird(node string) error {
	return l.signal("bird.pid", "bird", node, syscall.SIGCONT)
}

// HangWgbird stops server's wgbird with SIGSTOP; ContinueWgbird (or Heal)
// resumes it.
func (l *Lab) HangWgbird(server string) error {
	return l.signal("wgbird.pid", l.wgbirdName(), server, syscall.SIGSTOP)
}

// ContinueWgbird resumes a wgbird that HangWgbird stopped.
func (l *Lab) ContinueWgbird(server string) error {
	return l.signal("wgbird.pid", l.wgbirdName(), server, syscall.SIGCONT)
}

func (l *Lab) signal(pidFile, name, node string, sig syscall.Signal) error {
	pid := pidOf(l.path(node, pidFile), name)
	if pid == 0 {
		return fmt.Errorf("%s is not running on %s", comm(name), node)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signalling %s on %s: %w", comm(name), node, err)
	}
	return nil
}

// RestartWgbird stops server's wgbird with SIGTERM (the lab's on_stop is
// keep: BIRD is left as it is) and starts it again with the lab's current
// configuration.
func (l *Lab) RestartWgbird(ctx context.Context, server string) error {
	if pid := l.WgbirdPid(server); pid > 0 {
		if err := stopPid(ctx, pid, syscall.SIGTERM, 5*time.Second); err != nil {
			return fmt.Errorf("stopping wgbird on %s: %w", server, err)
		}
	}
	return l.ensureWgbird(ctx, server)
}

// RestartWireGuardBare kills server's wireguard-go and starts a new one
// that has no configuration yet: wg0 exists, down, without addresses,
// key, listen port or peers, as just after a restart before wg setconf.
// Heal configures it.
func (l *Lab) RestartWireGuardBare(ctx context.Context, server string) error {
	if pid := l.WireGuardGoPid(server); pid > 0 {
		if err := stopPid(ctx, pid, syscall.SIGKILL, 0); err != nil {
			return err
		}
	}
	return l.startWireGuardGo(ctx, server)
}

// WG runs wg(8) in node's namespace against its private /run/wireguard:
// "set wg0 listen-port 51820".
func (l *Lab) WG(ctx context.Context, node string, args ...string) (string, error) {
	return l.wg(ctx, node, args...)
}

// WGConfFile returns the path of node's wg(8) config of wg0.
func (l *Lab) WGConfFile(node string) string { return l.path(node, "wg0.conf") }

// FlapLink sets server's wg0 down and up again n times, spread evenly over
// the given duration, through one netlink socket in the server's
// namespace. It returns after the last flap with wg0 up.
func (l *Lab) FlapLink(ctx context.Context, server string, n int, over time.Duration) error {
	ns, err := netns.GetFromName(l.NS(server))
	if err != nil {
		return fmt.Errorf("opening %s namespace: %w", server, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("opening netlink in %s: %w", server, err)
	}
	defer h.Close()
	if err := h.SetSocketTimeout(cmdTimeout); err != nil {
		return fmt.Errorf("setting netlink timeout: %w", err)
	}
	lk, err := h.LinkByName(WGInterface)
	if err != nil {
		return fmt.Errorf("finding wg0 on %s: %w", server, err)
	}
	start := time.Now()
	for i := range n {
		if err := h.LinkSetDown(lk); err != nil {
			return fmt.Errorf("flap %d: setting wg0 down: %w", i, err)
		}
		if err := h.LinkSetUp(lk); err != nil {
			return fmt.Errorf("flap %d: setting wg0 up: %w", i, err)
		}
		next := start.Add(over * time.Duration(i+1) / time.Duration(n))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(next)):
		}
	}
	return nil
}

// ProcStats is what a leak shows in: a wgbird's goroutines, open file
// descriptors and resident memory.
type ProcStats struct {
	Pid int
	// Goroutines is go_goroutines from its metrics endpoint (the scrape's
	// own goroutine included, the same in every sample).
	Goroutines int
	// FDs counts the entries of /proc/PID/fd.
	FDs int
	// RSS is VmRSS of /proc/PID/status, in bytes; RSSAnon and RSSFile
	// its anonymous and file-backed parts (see MemStatus).
	RSS, RSSAnon, RSSFile int64
}

func (p ProcStats) String() string {
	return fmt.Sprintf("pid %d: %d goroutines, %d fds, RSS %.1f MiB", p.Pid, p.Goroutines, p.FDs, float64(p.RSS)/(1<<20))
}

// WgbirdStats measures server's wgbird.
func (l *Lab) WgbirdStats(ctx context.Context, server string) (ProcStats, error) {
	pid := l.WgbirdPid(server)
	if pid == 0 {
		return ProcStats{}, fmt.Errorf("wgbird is not running on %s", server)
	}
	st, err := procStats(pid)
	if err != nil {
		return st, err
	}
	m, err := l.WgbirdMetrics(ctx, server)
	if err != nil {
		return st, err
	}
	g, ok := m["go_goroutines"]
	if !ok {
		return st, errors.New("wgbird's metrics have no go_goroutines")
	}
	st.Goroutines = int(g)
	return st, nil
}

// procStats reads the fd count and RSS of pid from /proc.
func procStats(pid int) (ProcStats, error) {
	st := ProcStats{Pid: pid}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return st, fmt.Errorf("counting fds of pid %d: %w", pid, err)
	}
	st.FDs = len(fds)
	m, err := ReadMemStatus(pid)
	st.RSS, st.RSSAnon, st.RSSFile = m.RSS, m.Anon, m.File
	return st, err
}

// MemStatus is a process's memory use in bytes, from /proc/PID/status:
// peak and current resident set, and the current one split into anonymous
// memory (Go heap, stacks, runtime) and file pages (mostly the binary's
// own text and data, which grow as more of its code runs, up to its size).
// Threads counts its OS threads (each has a stack of its own).
type MemStatus struct{ HWM, RSS, Anon, File, Threads int64 }

// ReadMemStatus reads pid's memory use.
func ReadMemStatus(pid int) (MemStatus, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return MemStatus{}, fmt.Errorf("reading memory use of pid %d: %w", pid, err)
	}
	return ParseMemStatus(string(b))
}

// ParseMemStatus reads VmHWM, VmRSS, RssAnon, RssFile and Threads of a
// /proc/PID/status.
func ParseMemStatus(s string) (MemStatus, error) {
	var m MemStatus
	fields := map[string]*int64{"VmHWM": &m.HWM, "VmRSS": &m.RSS, "RssAnon": &m.Anon, "RssFile": &m.File, "Threads": &m.Threads}
	found := 0
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		dst := fields[k]
		if !ok || dst == nil {
			continue
		}
		if k == "Threads" {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return MemStatus{}, fmt.Errorf("malformed %s line %q", k, line)
			}
			*dst = n
		} else {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err != nil {
				return MemStatus{}, fmt.Errorf("malformed %s line %q", k, line)
			}
			*dst = kb * 1024
		}
		found++
	}
	if found != len(fields) {
		return MemStatus{}, errors.New("no VmHWM, VmRSS, RssAnon, RssFile and Threads in /proc/PID/status")
	}
	return m, nil
}

// Metrics are the samples of a Prometheus text exposition by series, as
// written: `go_goroutines`, `wgbird_bird_command_duration_seconds_count{command="enable"}`.
type Metrics map[string]float64

// Sum adds up the series of the metric name that carry every one of the
// given labels, each written `key="value"`: Sum("x_total", `code="8007"`).
func (m Metrics) Sum(name string, labels ...string) float64 {
	var sum float64
	for series, v := range m {
		var set string
		switch {
		case series == name:
		case strings.HasPrefix(series, name+"{") && strings.HasSuffix(series, "}"):
			set = "," + series[len(name)+1:len(series)-1] + ","
		default:
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(set, ","+l+",")
		}
		if ok {
			sum += v
		}
	}
	return sum
}

// parseMetrics parses a Prometheus text exposition (no timestamps, as
// client_golang writes it).
func parseMetrics(text string) (Metrics, error) {
	m := Metrics{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("parsing metrics line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("parsing metrics line %q: %w", line, err)
		}
		m[line[:i]] = v
	}
	return m, nil
}

// WgbirdMetrics scrapes server's wgbird metrics endpoint (MetricsListen in
// the server's namespace).
func (l *Lab) WgbirdMetrics(ctx context.Context, server string) (Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := labjudge.DialInNS(ctx, l.NS(server), "tcp", MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("scraping wgbird on %s: %w", server, err)
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	if _, err := fmt.Fprintf(c, "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", MetricsListen); err != nil {
		return nil, fmt.Errorf("scraping wgbird on %s: %w", server, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, fmt.Errorf("scraping wgbird on %s: %w", server, err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := bufio.NewReader(resp.Body).WriteTo(&b); err != nil {
		return nil, fmt.Errorf("scraping wgbird on %s: %w", server, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping wgbird on %s: %s", server, resp.Status)
	}
	return parseMetrics(b.String())
}

// UAPIReads counts the connections server's wgbird holds to wireguard-go's
// UAPI socket: its reads of wg0 in flight, and the liveness check's kept
// connection between checks (a hung device's read is on that one). A connection to a hung
// wireguard-go waits unaccepted in the listen queue, where ss shows its
// peer as "* 0"; an accepted one has the UAPI socket's path as its
// peer's address. Only sockets wgbird connected count (their own address
// is "*"), not those its control socket accepted. (A connection to a hung
// BIRD would look the same as the first kind: do not hang both at once.)
func (l *Lab) UAPIReads(ctx context.Context, server string) (int, error) {
	pid := l.WgbirdPid(server)
	if pid == 0 {
		return 0, fmt.Errorf("wgbird is not running on %s", server)
	}
	out, err := inNS(ctx, l.NS(server), "ss", "-xpan")
	if err != nil {
		return 0, err
	}
	return uapiReads(parseSS(out), pid, "/wireguard/"+WGInterface+".sock"), nil
}

// unixSock is one line of `ss -xpan`.
type unixSock struct {
	State     string
	Local     string
	Inode     uint64
	PeerInode uint64
	Pids      []int
}

// parseSS parses `ss -xpan` (unix sockets with processes). Lines it does
// not understand are skipped.
func parseSS(out string) []unixSock {
	var socks []unixSock
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.HasPrefix(f[0], "u_") {
			continue
		}
		ino, err1 := strconv.ParseUint(f[5], 10, 64)
		peer, err2 := strconv.ParseUint(f[7], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		s := unixSock{State: f[1], Local: f[4], Inode: ino, PeerInode: peer}
		if len(f) > 8 {
			for _, part := range strings.Split(strings.Join(f[8:], " "), "pid=")[1:] {
				end := strings.IndexAny(part, ",)")
				if end < 0 {
					continue
				}
				if pid, err := strconv.Atoi(part[:end]); err == nil {
					s.Pids = append(s.Pids, pid)
				}
			}
		}
		socks = append(socks, s)
	}
	return socks
}

// uapiReads counts the unix stream sockets pid connected (unbound,
// established) whose peer is either not listed (a connection waiting in a
// listen queue) or bound to a path ending in uapiSuffix.
func uapiReads(socks []unixSock, pid int, uapiSuffix string) int {
	byInode := make(map[uint64]unixSock, len(socks))
	for _, s := range socks {
		byInode[s.Inode] = s
	}
	n := 0
	for _, s := range socks {
		if s.State != "ESTAB" || s.Local != "*" || !slices.Contains(s.Pids, pid) {
			continue
		}
		peer, listed := byInode[s.PeerInode]
		if !listed || s.PeerInode == 0 || strings.HasSuffix(peer.Local, uapiSuffix) {
			n++
		}
	}
	return n
}
