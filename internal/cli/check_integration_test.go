//go:build integration

package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCheckEndToEnd runs the wgbird binary's `check` inside a network
// namespace of its own with a real wireguard-go, netlink and BIRD, and
// judges its table and exit status. BIRD has a static protocol and a BGP
// protocol towards a second namespace of the test's own where nothing
// listens, so nothing leaves the test's namespaces.
func TestCheckEndToEnd(t *testing.T) {
	missing := ""
	if os.Geteuid() != 0 {
		missing = "not root"
	}
	for _, b := range []string{"bird", "birdc", "ip", "wg", "wireguard-go", "go"} {
		if _, err := exec.LookPath(b); err != nil && missing == "" {
			missing = b + " not installed"
		}
	}
	if missing != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s", missing)
		}
		t.Skip(missing)
	}

	dir := t.TempDir()
	bin := filepath.Join(dir, "wgbird")
	build := exec.Command("go", "build", "-o", bin, "github.com/wgbird/wgbird/cmd/wgbird")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}

	suffix := fmt.Sprint(os.Getpid() % 100000)
	ns, peerNS := "wgtGe"+suffix, "wgtGf"+suffix
	sh := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	for _, n := range []string{ns, peerNS} {
		sh("ip", "netns", "add", n)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", n).Run() })
		sh("ip", "-n", n, "link", "set", "lo", "up")
	}
	sh("ip", "link", "add", "wgtGe"+suffix, "netns", ns, "type", "veth", "peer", "name", "wgtGf"+suffix, "netns", peerNS)
	sh("ip", "-n", ns, "addr", "add", "10.99.0.1/24", "dev", "wgtGe"+suffix)
	sh("ip", "-n", peerNS, "addr", "add", "10.99.0.2/24", "dev", "wgtGf"+suffix)
	sh("ip", "-n", ns, "link", "set", "wgtGe"+suffix, "up")
	sh("ip", "-n", peerNS, "link", "set", "wgtGf"+suffix, "up")

	// A private /run/wireguard, so that this test's wg0 meets no other.
	wgDir := filepath.Join(dir, "wireguard")
	if err := os.Mkdir(wgDir, 0o700); err != nil {
		t.Fatal(err)
	}
	inNS := func(argv ...string) *exec.Cmd {
		script := `mkdir -p /run/wireguard && mount --bind "$WGDIR" /run/wireguard && exec "$@"`
		c := exec.Command("ip", append([]string{"netns", "exec", ns, "sh", "-c", script, "sh"}, argv...)...)
		c.Env = append(os.Environ(), "WGDIR="+wgDir, "WG_PROCESS_FOREGROUND=1")
		return c
	}
	wgGo := inNS("wireguard-go", "-f", "wg0")
	var wgLog bytes.Buffer
	wgGo.Stdout, wgGo.Stderr = &wgLog, &wgLog
	wgGo.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := wgGo.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wgGo.Process.Kill(); wgGo.Wait() })
	for i := 0; ; i++ {
		if _, err := os.Stat(filepath.Join(wgDir, "wg0.sock")); err == nil {
			break
		}
		if i == 250 {
			t.Fatalf("wireguard-go did not start: %s", wgLog.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	key := strings.TrimSpace(sh("wg", "genkey"))
	peer := strings.TrimSpace(sh("wg", "genkey"))
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pubCmd := exec.Command("wg", "pubkey")
	pubCmd.Stdin = strings.NewReader(peer + "\n")
	peerPub, err := pubCmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := inNS("wg", "set", "wg0", "private-key", keyFile, "listen-port", "51820",
		"peer", strings.TrimSpace(string(peerPub)), "allowed-ips", "100.64.0.2/32").CombinedOutput(); err != nil {
		t.Fatalf("wg set: %v: %s", err, out)
	}
	sh("ip", "-n", ns, "link", "set", "wg0", "up")
	sh("ip", "-n", ns, "addr", "add", "192.168.20.1/24", "dev", "wg0")

	birdConf := filepath.Join(dir, "bird.conf")
	birdSock := filepath.Join(dir, "bird.ctl")
	if err := os.WriteFile(birdConf, []byte(`router id 10.99.0.1;
protocol device {}
protocol static wg_vip4 {
  disabled;
  ipv4;
  route 192.168.20.0/24 via "wg0";
}
protocol bgp bgp_router {
  local 10.99.0.1 as 65000;
  neighbor 10.99.0.2 as 65001;
  ipv4 { import none; export where source = RTS_STATIC; };
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	birdCmd := exec.Command("ip", "netns", "exec", ns, "bird", "-f", "-c", birdConf, "-s", birdSock)
	birdCmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := birdCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { birdCmd.Process.Kill(); birdCmd.Wait() })
	for i := 0; ; i++ {
		if _, err := os.Stat(birdSock); err == nil {
			break
		}
		if i == 250 {
			t.Fatal("bird did not create its socket")
		}
		time.Sleep(20 * time.Millisecond)
	}

	writeConf := func(name, protocols string) string {
		p := filepath.Join(dir, name)
		conf := fmt.Sprintf(`[bird]
socket = %q

[[service]]
name = "vpn4"
interface = "wg0"
vips = ["192.168.20.1/24"]
protocols = [%s]
listen_port = 51820
`, birdSock, protocols)
		if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := writeConf("good.toml", `"wg_vip4"`)
	unknown := writeConf("unknown.toml", `"nosuch"`)
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[[service]]\ninterface = 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	check := func(conf string) (int, string, string) {
		t.Helper()
		c := inNS(bin, "check", "--config", conf)
		var stdout, stderr bytes.Buffer
		c.Stdout, c.Stderr = &stdout, &stderr
		err := c.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0, stdout.String(), stderr.String()
		case errors.As(err, &ee):
			return ee.ExitCode(), stdout.String(), stderr.String()
		}
		t.Fatalf("running check: %v", err)
		return 0, "", ""
	}

	birdVersion := strings.TrimPrefix(strings.TrimSpace(sh("bird", "--version")), "BIRD version ")
	code, out, errOut := check(good)
	if code != ExitOK {
		t.Fatalf("healthy: exit %d, stderr %q:\n%s", code, errOut, out)
	}
	for _, s := range []string{
		"BIRD: reachable at " + birdSock + ", BIRD " + birdVersion + ", round trip",
		"vpn4 (interface wg0): WITHDRAWN",
		"link       ok",
		"wireguard  ok",
		"listen 51820, 1 peer",
		"wg_vip4        Static  master4  down",
		// BGP cannot say whether its filter passes a disabled protocol's
		// routes; check says so rather than guess.
		"Not verified:",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("healthy: output lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, "Warnings:") {
		t.Errorf("healthy: warnings for a good set-up:\n%s", out)
	}

	sh("ip", "-n", ns, "addr", "del", "192.168.20.1/24", "dev", "wg0")
	code, out, errOut = check(good)
	if code != ExitFailure || !strings.Contains(out, "FAIL (hard)") || !strings.Contains(out, "VIP 192.168.20.1/24 missing on wg0") || errOut != "wgbird check: unhealthy: vpn4\n" {
		t.Errorf("VIP gone: exit %d, stderr %q:\n%s", code, errOut, out)
	}

	code, out, errOut = check(unknown)
	if code != ExitConfig || !strings.Contains(errOut, `BIRD has no protocol "nosuch"`) {
		t.Errorf("unknown protocol: exit %d, stderr %q:\n%s", code, errOut, out)
	}
	code, _, errOut = check(bad)
	if code != ExitConfig || !strings.HasPrefix(errOut, "wgbird check: "+bad) {
		t.Errorf("bad config: exit %d, stderr %q", code, errOut)
	}

	// check changed nothing: the static protocol is still disabled.
	if out := sh("birdc", "-s", birdSock, "show", "protocols", "wg_vip4"); !strings.Contains(out, "wg_vip4    Static     master4    down") {
		t.Errorf("BIRD changed:\n%s", out)
	}

	// wgbird run: a protocol BIRD does not know and a group that does not
	// exist are configuration errors located as FILE:LINE: KEY, found
	// before anything listens.
	runConf := func(name, extra, protocols string) string {
		p := filepath.Join(dir, name)
		conf := fmt.Sprintf("[bird]\nsocket = %q\n\n[control]\nsocket = %q\nruntime_dir = %q\nstate_dir = %q\n%s\n[[service]]\ninterface = \"wg0\"\nvips = [\"192.168.20.1/24\"]\nprotocols = [%s]\n",
			birdSock, filepath.Join(dir, name+".sock"), filepath.Join(dir, "run"), filepath.Join(dir, "state"), extra, protocols)
		if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct{ name, extra, protocols, want string }{
		{"run-unknown.toml", "", `"wg_vip4", "wg_vip44"`, `:12: service[1].protocols[2]: service "wg0": BIRD has no protocol "wg_vip44" (check this name and bird.conf)`},
		{"run-group.toml", `group = "wgbird-nosuch-group"`, `"wg_vip4"`, `:8: control.group: "wgbird-nosuch-group": no such group (create it: groupadd --system wgbird-nosuch-group; or set group = "" to keep root's group)`},
	} {
		conf := runConf(tc.name, tc.extra, tc.protocols)
		c := inNS(bin, "run", "--config", conf)
		c.WaitDelay = 5 * time.Second
		var stderr bytes.Buffer
		c.Stdout, c.Stderr = &stderr, &stderr
		done := make(chan error, 1)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- c.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			c.Process.Kill()
			err = <-done
			t.Errorf("%s: wgbird run still running after 10 s", tc.name)
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != ExitConfig || !strings.Contains(stderr.String(), conf+tc.want) {
			t.Errorf("%s: %v, output:\n%s\nwant exit %d and %q", tc.name, err, stderr.String(), ExitConfig, conf+tc.want)
		}
		if strings.Contains(stderr.String(), "listening") || strings.Contains(stderr.String(), "starting") {
			t.Errorf("%s: wgbird listened or started before the error:\n%s", tc.name, stderr.String())
		}
		if _, err := os.Stat(filepath.Join(dir, tc.name+".sock")); err == nil {
			t.Errorf("%s: control socket created", tc.name)
		}
	}

	// A BIRD that forks itself (no -f): the process that bound the socket
	// has exited, and check finds the one that holds it.
	sh("ip", "-n", ns, "addr", "add", "192.168.20.1/24", "dev", "wg0")
	birdCmd.Process.Kill()
	birdCmd.Wait()
	os.Remove(birdSock)
	pidFile := filepath.Join(dir, "bird.pid")
	sh("ip", "netns", "exec", ns, "bird", "-c", birdConf, "-s", birdSock, "-P", pidFile)
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	for i := 0; ; i++ {
		if _, err := os.Stat(birdSock); err == nil {
			break
		}
		if i == 250 {
			t.Fatal("forking bird did not create its socket")
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, out, errOut = check(good)
	if code != ExitOK || strings.Contains(out, "cmdline") || !strings.Contains(out, "wg_vip4        Static  master4  down") {
		t.Errorf("forking BIRD: exit %d, stderr %q:\n%s", code, errOut, out)
	}
}
