package labproc

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// ssHung is `ss -xpan` in a server namespace (trimmed), captured with
// wireguard-go stopped (SIGSTOP) while wgbird (pid 300) held a read of
// wg0 in its listen queue, its connection to BIRD and a control client's
// connection (from another namespace, so its peer is not listed); wg (pid
// 400) had connected too.
const ssHung = `Netid State  Recv-Q Send-Q               Local Address:Port   Peer Address:PortProcess
u_str LISTEN 2      4096   /var/run/wireguard/wg0.sock 258848            * 0    users:(("wireguard-go",pid=200,fd=13),("wireguard-go",pid=200,fd=12))
u_str ESTAB  0      768                              * 258937            * 0    users:(("wgbird",pid=300,fd=9))
u_str ESTAB  0      768                              * 258938            * 0    users:(("wg",pid=400,fd=3))
u_str ESTAB 0      0                                * 245951            * 245952 users:(("wgbird",pid=300,fd=6))
u_str ESTAB 0      0      /run/wgbb-bench/s2/bird.ctl 245952            * 245951 users:(("bird",pid=100,fd=20))
u_str LISTEN 0      4096   /run/wgbf/s1/wgbird.sock 245990            * 0    users:(("wgbird",pid=300,fd=7))
u_str ESTAB 0      0      /run/wgbf/s1/wgbird.sock 245991            * 245777 users:(("wgbird",pid=300,fd=8))
`

// ssAnswered: wireguard-go (pid 200) has accepted wgbird's read.
const ssAnswered = `Netid State Recv-Q Send-Q               Local Address:Port   Peer Address:Port  Process
u_str ESTAB 0      0                                * 245951            * 245952 users:(("wgbird",pid=300,fd=6))
u_str ESTAB 0      0      /run/wgbb-bench/s2/bird.ctl 245952            * 245951 users:(("bird",pid=100,fd=20))
u_str ESTAB 0      0                                * 261001            * 261002 users:(("wgbird",pid=300,fd=10))
u_str ESTAB 0      0      /var/run/wireguard/wg0.sock 261002            * 261001 users:(("wireguard-go",pid=200,fd=14))
`

func TestParseSS(t *testing.T) {
	got := parseSS(ssHung)
	want := []unixSock{
		{State: "LISTEN", Local: "/var/run/wireguard/wg0.sock", Inode: 258848, Pids: []int{200, 200}},
		{State: "ESTAB", Local: "*", Inode: 258937, Pids: []int{300}},
		{State: "ESTAB", Local: "*", Inode: 258938, Pids: []int{400}},
		{State: "ESTAB", Local: "*", Inode: 245951, PeerInode: 245952, Pids: []int{300}},
		{State: "ESTAB", Local: "/run/wgbb-bench/s2/bird.ctl", Inode: 245952, PeerInode: 245951, Pids: []int{100}},
		{State: "LISTEN", Local: "/run/wgbf/s1/wgbird.sock", Inode: 245990, Pids: []int{300}},
		{State: "ESTAB", Local: "/run/wgbf/s1/wgbird.sock", Inode: 245991, PeerInode: 245777, Pids: []int{300}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseSS (-want +got):\n%s", diff)
	}
}

func TestUAPIReads(t *testing.T) {
	const suffix = "/wireguard/wg0.sock"
	for _, tt := range []struct {
		name string
		out  string
		pid  int
		want int
	}{
		{"hung: one read in the listen queue", ssHung, 300, 1},
		{"hung: wg (pid 400) holds a read of its own", ssHung, 400, 1},
		{"answered: one accepted read", ssAnswered, 300, 1},
		{"no such process", ssAnswered, 999, 0},
		{"nothing", "", 300, 0},
	} {
		if got := uapiReads(parseSS(tt.out), tt.pid, suffix); got != tt.want {
			t.Errorf("%s: uapiReads = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 17
wgbird_bird_command_duration_seconds_count{command="enable"} 3
wgbird_bird_command_duration_seconds_count{command="show_protocols"} 40
wgbird_bird_command_duration_seconds_bucket{command="enable",le="0.005"} 3
wgbird_bird_command_errors_total{code="8007",command="disable"} 2
wgbird_bird_command_errors_total{code="timeout",command="show_protocols"} 5
process_resident_memory_bytes 1.6105472e+07
`
	m, err := ParseMetrics(text)
	if err != nil {
		t.Fatal(err)
	}
	if got := m["go_goroutines"]; got != 17 {
		t.Errorf("go_goroutines = %v, want 17", got)
	}
	if got := m.Sum("wgbird_bird_command_duration_seconds_count"); got != 43 {
		t.Errorf("Sum(command count) = %v, want 43", got)
	}
	if got := m.Sum("wgbird_bird_command_duration_seconds_count", `command="enable"`); got != 3 {
		t.Errorf("Sum(command count, enable) = %v, want 3", got)
	}
	if got := m.Sum("wgbird_bird_command_errors_total", `code="8007"`); got != 2 {
		t.Errorf("Sum(errors, 8007) = %v, want 2", got)
	}
	if got := m.Sum("wgbird_bird_command_duration_seconds_count", `command="disable"`); got != 0 {
		t.Errorf("Sum(command count, disable) = %v, want 0", got)
	}
	if got := m["process_resident_memory_bytes"]; got != 16105472 {
		t.Errorf("process_resident_memory_bytes = %v", got)
	}
	if _, err := ParseMetrics("go_goroutines x\n"); err == nil {
		t.Error("parseMetrics accepted a malformed value")
	}
}

func TestParseMemStatus(t *testing.T) {
	status := "Name:\twgbird\nVmPeak:\t 1250000 kB\nVmHWM:\t   13456 kB\nVmRSS:\t   13400 kB\nRssAnon:\t    2640 kB\nRssFile:\t   10760 kB\nRssShmem:\t       0 kB\nThreads:\t7\n"
	mem, err := ParseMemStatus(status)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(MemStatus{HWM: 13456 << 10, RSS: 13400 << 10, Anon: 2640 << 10, File: 10760 << 10, Threads: 7}, mem); diff != "" {
		t.Errorf("ParseMemStatus (-want +got):\n%s", diff)
	}
	if _, err := ParseMemStatus("Name:\tx\nVmHWM:\t1 kB\n"); err == nil {
		t.Error("ParseMemStatus without Vm lines: no error")
	}
	if _, err := ParseMemStatus(strings.Replace(status, "13400 kB", "13.4 MB", 1)); err == nil {
		t.Error("ParseMemStatus with a malformed VmRSS: no error")
	}
}
