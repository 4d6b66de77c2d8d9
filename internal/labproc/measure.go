package labproc

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// What a leak shows in, read from outside a process: its fds and memory
// from /proc, its goroutines from its Prometheus metrics, its connections
// to a UAPI socket from ss.

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

// ReadStats reads the fd count and RSS of pid from /proc (Goroutines
// stays 0: they come from the process's metrics).
func ReadStats(pid int) (ProcStats, error) {
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

// ParseMetrics parses a Prometheus text exposition (no timestamps, as
// client_golang writes it).
func ParseMetrics(text string) (Metrics, error) {
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

// UAPIConns counts, in `ss -xpan`'s output, the connections pid holds to
// a UAPI socket whose path ends in uapiSuffix (see uapiReads).
func UAPIConns(ss string, pid int, uapiSuffix string) int {
	return uapiReads(parseSS(ss), pid, uapiSuffix)
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
