//go:build guest

package guest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The packages whose kernel WireGuard tests run in the guest, built with
// the tags integration and kernelwg. Run limits each binary to the tests
// that use the kernel (the unit tests run on the host already).
var guestPackages = []struct {
	pkg, run string
	env      []string
}{
	{pkg: "internal/wireguard", run: "^TestKernel|^TestDeviceHealth$"},
	{pkg: "internal/link", run: "^TestKernel"},
	{pkg: "internal/probe", run: "^TestIntegrationProbe$|^TestKernel"},
	{pkg: "internal/vipsrc", run: "."},
	{pkg: "internal/takeover", run: "^TestTakeover"},
	// Failover and return in the two-server lab with BIRD and wgbird,
	// judged by the router's kernel table, for every WireGuard fault that
	// kernel WireGuard can have (kill and hang act on wireguard-go).
	{pkg: "internal/lab", run: "^TestFaultModes$/^(link-delete|link-down|vip-remove|key-remove|port-change|peers-remove|key-rotate)$",
		env: []string{"WGBIRD_TEST_WGBIRD=/usr/sbin/wgbird"}},
}

// guestTools are host programs the tests run in the guest (with their
// libraries).
var guestTools = []string{"ip", "wg", "bird", "birdc", "nft"}

// TestKernelWireGuard builds the test binaries statically, packs them with
// busybox, ip, wg and Debian's cloud kernel modules into an initramfs,
// boots it in qemu without KVM and reports every test the guest ran as a
// subtest here. The extracted kernel is cached under bin/kernel-wg
// (WGBIRD_KERNEL_CACHE overrides it), with the last console in console.log
// beside it; everything else lives in a temporary directory removed at the
// end.
func TestKernelWireGuard(t *testing.T) {
	missing := t.Skipf
	if os.Getenv("CI") == "true" {
		missing = t.Fatalf
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		missing("qemu-system-x86_64 not installed (apt-get install qemu-system-x86): %v", err)
	}
	busybox := "/bin/busybox"
	if static, err := IsStatic(busybox); err != nil || !static {
		missing("%s is not a static busybox (apt-get install busybox-static): %v", busybox, err)
	}
	var tools []string
	for _, name := range guestTools {
		p, err := exec.LookPath(name)
		if err != nil {
			missing("%s not installed: %v", name, err)
		}
		if p, err = filepath.EvalSymlinks(p); err != nil {
			t.Fatal(err)
		}
		tools = append(tools, p)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cache := os.Getenv("WGBIRD_KERNEL_CACHE")
	if cache == "" {
		cache = filepath.Join(root, "bin", "kernel-wg")
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	k, err := FetchKernel(ctx, cache, t.Logf)
	if err != nil {
		missing("the cloud kernel: %v", err)
	}
	t.Logf("kernel %s (%d modules) ready after %v", k.Package, len(k.ModuleFiles), time.Since(start).Round(time.Millisecond))

	tmp := t.TempDir()
	wgbird := filepath.Join(tmp, "wgbird")
	build := exec.CommandContext(ctx, "go", "build", "-o", wgbird, "./cmd/wgbird")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building wgbird: %v\n%s", err, out)
	}
	im := &Image{Busybox: busybox, Tools: tools, Kernel: k, Files: map[string]string{"usr/sbin/wgbird": wgbird}}
	for _, gp := range guestPackages {
		bin := filepath.Join(tmp, strings.ReplaceAll(gp.pkg, "/", "_")+".test")
		cmd := exec.CommandContext(ctx, "go", "test", "-c", "-tags", "integration kernelwg", "-o", bin, "./"+gp.pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", gp.pkg, err, out)
		}
		im.Runs = append(im.Runs, Run{Name: gp.pkg, Binary: bin, Dir: filepath.Join(root, gp.pkg),
			Args: []string{"-test.run=" + gp.run, "-test.timeout=3m"}, Env: gp.env})
	}
	t.Logf("test binaries built after %v", time.Since(start).Round(time.Millisecond))
	a, err := im.Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	initrd, err := WriteInitrd(a, tmp)
	if err != nil {
		t.Fatal(err)
	}

	var console bytes.Buffer
	booted := time.Now()
	bootErr := Boot(ctx, qemu, k, initrd, 1024, 2, &console)
	t.Logf("guest ran for %v", time.Since(booted).Round(time.Millisecond))
	// The last run's console, for a closer look.
	if err := os.WriteFile(filepath.Join(cache, "console.log"), console.Bytes(), 0o644); err != nil {
		t.Error(err)
	}
	c, err := ParseConsole(bytes.NewReader(console.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	report(t, c, bootErr, console.String())
}

// report turns the parsed console into subtests, one per package and per
// top-level guest test, and fails on any failure, a missing result or a
// boot that did not reach its end.
func report(t *testing.T, c *Console, bootErr error, console string) {
	t.Helper()
	var passed, failed, skipped int
	bad := func(format string, args ...any) {
		t.Errorf(format, args...)
		t.Logf("guest console:\n%s", tail(console, 200))
	}
	if bootErr != nil {
		bad("booting the guest: %v", bootErr)
	}
	for _, e := range c.Errors {
		bad("guest /init: %s", e)
	}
	if !c.Done {
		bad("the guest never reached the end of /init")
	}
	ran := make(map[string]bool)
	for _, r := range c.Runs {
		ran[r.Name] = true
		t.Run(r.Name, func(t *testing.T) {
			tops, fails := 0, 0
			for _, tr := range r.Tests {
				switch tr.Status {
				case Pass:
					passed++
				case Fail:
					failed++
					fails++
				case Skip:
					skipped++
				}
				if strings.Contains(tr.Name, "/") {
					continue
				}
				tops++
				t.Run(tr.Name, func(t *testing.T) {
					for _, sub := range r.Tests {
						if strings.HasPrefix(sub.Name, tr.Name+"/") {
							t.Logf("%s %s", sub.Status, sub.Name)
						}
					}
					switch tr.Status {
					case Fail:
						t.Errorf("failed in the guest:\n%s", strings.Join(failureOutput(r, tr.Name), "\n"))
					case Skip:
						// The guest has every prerequisite: a skip there
						// is a test that did not run.
						t.Errorf("skipped in the guest:\n%s", strings.Join(tr.Output, "\n"))
					}
				})
			}
			switch {
			case !r.Exited:
				t.Errorf("no exit status: the test binary did not finish\n%s", strings.Join(r.Output, "\n"))
			case r.Code != 0 && fails == 0:
				t.Errorf("test binary exited %d\n%s", r.Code, strings.Join(r.Output, "\n"))
			case r.Code != 0:
				t.Errorf("test binary exited %d", r.Code)
			}
			if tops == 0 {
				t.Errorf("no test result line\n%s", strings.Join(r.Output, "\n"))
			}
		})
	}
	for _, gp := range guestPackages {
		if !ran[gp.pkg] {
			bad("%s: never ran in the guest", gp.pkg)
		}
	}
	fmt.Printf("kernel-test: %d passed, %d failed, %d skipped\n", passed, failed, skipped)
}

// failureOutput is what a failed test and its subtests printed.
func failureOutput(r RunResult, name string) []string {
	var out []string
	for _, tr := range r.Tests {
		if tr.Name == name || strings.HasPrefix(tr.Name, name+"/") {
			out = append(out, tr.Output...)
			out = append(out, fmt.Sprintf("--- %s: %s", tr.Status, tr.Name))
		}
	}
	return out
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
