//go:build integration

package birdlint

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wgbird/wgbird/internal/bird"
)

// Two BIRDs in two network namespaces of the test's own, joined by a veth
// pair, speak BGP to each other and to nobody else. Server A holds the
// protocols wgbird would control; it exports only wg_vip4's route.
const confA = `router id 10.99.0.1;
protocol device {}
protocol static wg_vip4 {
  disabled;
  ipv4;
  route 192.168.20.0/24 unreachable;
}
protocol static other_static {
  ipv4;
  route 192.168.30.0/24 unreachable;
}
filter only_vip {
  if net = 192.168.20.0/24 then accept;
  reject;
}
protocol bgp up_peer {
  local 10.99.0.1 as 65000;
  neighbor 10.99.0.2 as 65001;
  connect delay time 1; connect retry time 1; error wait time 1,5; hold time 3; keepalive time 1;
  ipv4 { import all; export filter only_vip; };
}
`

const confB = `router id 10.99.0.2;
protocol device {}
protocol bgp srv {
  local 10.99.0.2 as 65001;
  neighbor 10.99.0.1 as 65000;
  connect delay time 1; connect retry time 1; error wait time 1,5; hold time 3; keepalive time 1;
  ipv4 { import all; export none; };
}
`

func require(t *testing.T) {
	t.Helper()
	missing := ""
	if os.Geteuid() != 0 {
		missing = "not root"
	}
	for _, b := range []string{"bird", "ip"} {
		if _, err := exec.LookPath(b); err != nil && missing == "" {
			missing = b + " not installed"
		}
	}
	if missing == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but %s", missing)
	}
	t.Skip(missing)
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// startBird runs bird in the foreground in netns ns with a config given
// by a path relative to dir, its working directory, as an operator might.
func startBird(t *testing.T, ns, dir, name, conf string) (sock string, pid int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name+".conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	sock = filepath.Join(dir, name+".ctl")
	cmd := exec.Command("ip", "netns", "exec", ns, "bird", "-f", "-c", name+".conf", "-s", sock)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		out.Close()
	})
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i == 250 {
			b, _ := os.ReadFile(filepath.Join(dir, name+".log"))
			t.Fatalf("bird %s did not create its socket in 5 s: %s", name, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return sock, cmd.Process.Pid
}

func TestAgainstBIRD(t *testing.T) {
	require(t)
	suffix := fmt.Sprint(os.Getpid() % 100000)
	nsA, nsB := "wgtGa"+suffix, "wgtGb"+suffix
	vethA, vethB := "wgtGa"+suffix, "wgtGb"+suffix
	run(t, "ip", "netns", "add", nsA)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", nsA).Run() })
	run(t, "ip", "netns", "add", nsB)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", nsB).Run() })
	run(t, "ip", "link", "add", vethA, "netns", nsA, "type", "veth", "peer", "name", vethB, "netns", nsB)
	run(t, "ip", "-n", nsA, "addr", "add", "10.99.0.1/24", "dev", vethA)
	run(t, "ip", "-n", nsB, "addr", "add", "10.99.0.2/24", "dev", vethB)
	for _, ns := range []string{nsA, nsB} {
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "-n", nsA, "link", "set", vethA, "up")
	run(t, "ip", "-n", nsB, "link", "set", vethB, "up")

	dir := t.TempDir()
	sockA, pidA := startBird(t, nsA, dir, "a", confA)
	startBird(t, nsB, dir, "b", confB)

	// The config is found from the socket alone.
	loc, err := Locate(sockA, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := Located{PID: pidA, Root: fmt.Sprintf("/proc/%d/root", pidA), Path: filepath.Join(dir, "a.conf")}
	if diff := cmp.Diff(want, loc); diff != "" {
		t.Fatalf("Locate (-want +got):\n%s", diff)
	}
	// bird runs in a mount namespace of its own (ip netns exec): the file
	// is watched through its root.
	if got, err := loc.Watched(); err != nil || got != want.Root+want.Path {
		t.Errorf("Watched = %q, %v; want %q", got, err, want.Root+want.Path)
	}
	read, glob := FileSystem(loc.Root)
	conf, err := ReadConf(loc.Path, read, glob)
	if err != nil {
		t.Fatal(err)
	}

	c := bird.NewClient(sockA, bird.Options{Timeout: 2 * time.Second})
	defer c.Close()
	ctx := context.Background()
	if err := c.Enable(ctx, "wg_vip4"); err != nil {
		t.Fatal(err)
	}
	var protos []Detail
	for i := 0; ; i++ {
		r, err := c.Query(ctx, "show protocols all")
		if err != nil {
			t.Fatal(err)
		}
		if protos, err = ParseProtocolsAll(r); err != nil {
			t.Fatal(err)
		}
		if p, _ := find(protos, "up_peer"); p.Attrs["BGP state"] == "Established" {
			break
		}
		if i == 150 {
			t.Fatalf("BGP not established in 15 s:\n%s", strings.Join(summary(protos), "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}

	svcs := []Service{{Name: "vpn", Protocols: []string{"wg_vip4", "other_static"}}}
	exports := map[ExportQuery]int{}
	for _, q := range ExportQueries(svcs, protos) {
		r, err := c.Query(ctx, q.Command())
		if err != nil {
			t.Fatalf("%s: %v", q.Command(), err)
		}
		if exports[q], err = ParseRouteCount(r); err != nil {
			t.Fatal(err)
		}
	}
	wantExports := map[ExportQuery]int{
		{Table: "master4", BGP: "up_peer", Protocol: "wg_vip4"}:      1,
		{Table: "master4", BGP: "up_peer", Protocol: "other_static"}: 0,
	}
	if diff := cmp.Diff(wantExports, exports); diff != "" {
		t.Errorf("exports (-want +got):\n%s", diff)
	}
	got := Lint(Input{Services: svcs, Protocols: protos, Exports: exports, Conf: conf})
	wantReport := Report{Warnings: []string{
		fmt.Sprintf("service vpn: protocol other_static (%s:8) is not `disabled` in BIRD's config: when BIRD starts or reloads its config it announces before wgbird has checked anything; add `disabled;` to it (wgbird enables it once healthy)", loc.Path),
		"service vpn: no BGP protocol exports other_static's routes from table master4: up_peer (filter only_vip); enabling and disabling it moves no traffic",
	}}
	if diff := cmp.Diff(wantReport, got); diff != "" {
		t.Errorf("Lint (-want +got):\n%s", diff)
	}
}
