package guest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func parseFile(t *testing.T, name string) *Console {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := ParseConsole(f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type summary struct {
	Name   string
	Exited bool
	Code   int
	Tests  []string // "STATUS name"
}

func summarize(c *Console) []summary {
	var out []summary
	for _, r := range c.Runs {
		s := summary{Name: r.Name, Exited: r.Exited, Code: r.Code}
		for _, tr := range r.Tests {
			s.Tests = append(s.Tests, string(tr.Status)+" "+tr.Name)
		}
		out = append(out, s)
	}
	return out
}

// A console captured from a real make kernel-test run.
func TestParseConsolePass(t *testing.T) {
	c := parseFile(t, "console-pass.txt")
	if !c.Done || len(c.Errors) != 0 {
		t.Errorf("Done = %v, Errors = %q; want done without errors", c.Done, c.Errors)
	}
	got := summarize(c)
	if len(got) != 3 {
		t.Fatalf("runs = %+v, want 3", got)
	}
	want := summary{Name: "internal/wireguard", Exited: true, Tests: []string{
		"PASS TestKernelDeviceDeletedAndRecreated", "PASS TestKernelLinkDown", "PASS TestKernelHandshakeAge",
		"PASS TestDeviceHealth", "PASS TestDeviceHealth/healthy", "PASS TestDeviceHealth/no_private_key",
		"PASS TestDeviceHealth/no_peers", "PASS TestDeviceHealth/wrong_port", "PASS TestDeviceHealth/unconfigured",
	}}
	if diff := cmp.Diff(want, got[0]); diff != "" {
		t.Errorf("first run (-want +got):\n%s", diff)
	}
	for _, r := range got {
		if !r.Exited || r.Code != 0 || len(r.Tests) == 0 {
			t.Errorf("run %+v: want exit 0 with results", r)
		}
		for _, tr := range r.Tests {
			if !strings.HasPrefix(tr, "PASS ") {
				t.Errorf("run %s: %s", r.Name, tr)
			}
		}
	}
	hs := c.Runs[0].Tests[2]
	if len(hs.Output) != 1 || !strings.Contains(hs.Output[0], "handshake at ") {
		t.Errorf("TestKernelHandshakeAge output = %q, want its one log line", hs.Output)
	}
}

// Failures, a result line behind a kernel message, a skip, and a binary
// that died before its exit marker and before /init's end.
func TestParseConsoleFail(t *testing.T) {
	c := parseFile(t, "console-fail.txt")
	want := []summary{
		{Name: "internal/wireguard", Exited: true, Code: 1, Tests: []string{
			"FAIL TestKernelLinkDown", "PASS TestDeviceHealth/healthy", "FAIL TestDeviceHealth/no_peers",
			"FAIL TestDeviceHealth", "SKIP TestSkipped",
		}},
		{Name: "internal/probe"},
	}
	if diff := cmp.Diff(want, summarize(c)); diff != "" {
		t.Errorf("runs (-want +got):\n%s", diff)
	}
	if c.Done {
		t.Error("Done = true for a console that ends in a panic")
	}
	if diff := cmp.Diff([]string{"[    1.234567] random: crng init done"}, c.Other); diff != "" {
		t.Errorf("Other (-want +got):\n%s", diff)
	}
	noPeers := c.Runs[0].Tests[2]
	if len(noPeers.Output) != 1 || !strings.Contains(noPeers.Output[0], "Evaluate (-want +got): wrong") {
		t.Errorf("no_peers output = %q", noPeers.Output)
	}
	if got := c.Runs[1].Output; len(got) != 2 || got[1] != "panic: boom" {
		t.Errorf("probe output = %q, want the panic", got)
	}
}

func TestParseConsoleInitError(t *testing.T) {
	c, err := ParseConsole(strings.NewReader("wgbird-guest: error insmod /lib/modules/wireguard.ko\nwgbird-guest: done\n"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"insmod /lib/modules/wireguard.ko"}, c.Errors); diff != "" || !c.Done || len(c.Runs) != 0 {
		t.Errorf("Errors (-want +got):\n%s; Done %v, Runs %d", diff, c.Done, len(c.Runs))
	}
}

// An excerpt of modules.dep from linux-image-6.1.0-57-cloud-amd64.
const modulesDep = `kernel/arch/x86/crypto/chacha-x86_64.ko: kernel/lib/crypto/libchacha.ko
kernel/arch/x86/crypto/curve25519-x86_64.ko: kernel/lib/crypto/libcurve25519-generic.ko
kernel/drivers/net/dummy.ko:
kernel/drivers/net/wireguard/wireguard.ko: kernel/lib/crypto/libchacha20poly1305.ko kernel/arch/x86/crypto/chacha-x86_64.ko kernel/arch/x86/crypto/poly1305-x86_64.ko kernel/net/ipv6/ip6_udp_tunnel.ko kernel/net/ipv4/udp_tunnel.ko kernel/arch/x86/crypto/curve25519-x86_64.ko kernel/lib/crypto/libcurve25519-generic.ko kernel/lib/crypto/libchacha.ko
kernel/drivers/net/veth.ko:
kernel/lib/crypto/libchacha.ko:
`

func TestModuleOrder(t *testing.T) {
	got, err := ModuleOrder([]byte(modulesDep), "wireguard", "veth", "dummy")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"kernel/lib/crypto/libchacha.ko", "kernel/lib/crypto/libcurve25519-generic.ko",
		"kernel/arch/x86/crypto/curve25519-x86_64.ko", "kernel/net/ipv4/udp_tunnel.ko",
		"kernel/net/ipv6/ip6_udp_tunnel.ko", "kernel/arch/x86/crypto/poly1305-x86_64.ko",
		"kernel/arch/x86/crypto/chacha-x86_64.ko", "kernel/lib/crypto/libchacha20poly1305.ko",
		"kernel/drivers/net/wireguard/wireguard.ko", "kernel/drivers/net/veth.ko", "kernel/drivers/net/dummy.ko",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ModuleOrder (-want +got):\n%s", diff)
	}
	if _, err := ModuleOrder([]byte(modulesDep), "tun"); err == nil || !strings.Contains(err.Error(), "module tun not in modules.dep") {
		t.Errorf("ModuleOrder(tun) error = %v, want it named", err)
	}
}

func TestDependsOn(t *testing.T) {
	out := []byte("linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-57-cloud-amd64\n")
	if got := DependsOn(out, "linux-image-"); got != "linux-image-6.1.0-57-cloud-amd64" {
		t.Errorf("DependsOn = %q", got)
	}
	if got := DependsOn([]byte("linux-image-cloud-amd64\n"), "linux-image-"); got != "" {
		t.Errorf("DependsOn(no depends) = %q, want empty", got)
	}
}

func TestParseLdd(t *testing.T) {
	out := []byte("\tlinux-vdso.so.1 (0x00007f731300d000)\n" +
		"\tlibbpf.so.1 => /lib/x86_64-linux-gnu/libbpf.so.1 (0x00007f7312ead000)\n" +
		"\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f7312c84000)\n" +
		"\t/lib64/ld-linux-x86-64.so.2 (0x00007f731300f000)\n")
	got, err := ParseLdd(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/lib/x86_64-linux-gnu/libbpf.so.1", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseLdd (-want +got):\n%s", diff)
	}
	if _, err := ParseLdd([]byte("\tlibgone.so.1 => not found\n")); err == nil {
		t.Error("ParseLdd(not found) = nil error")
	}
}

// readNewc reads back a gzip-less newc archive: name -> mode and data.
func readNewc(t *testing.T, b []byte) map[string]string {
	t.Helper()
	out := make(map[string]string)
	for len(b) > 0 {
		if len(b) < 110 || string(b[:6]) != "070701" {
			t.Fatalf("bad header at %q", b[:min(len(b), 16)])
		}
		field := func(i int) int {
			v, err := strconv.ParseUint(string(b[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return int(v)
		}
		mode, size, namesize := field(1), field(6), field(11)
		name := string(b[110 : 110+namesize-1])
		off := (110 + namesize + 3) &^ 3
		data := string(b[off : off+size])
		b = b[(off+size+3)&^3:]
		if name == "TRAILER!!!" {
			if len(bytes.Trim(b, "\x00")) != 0 {
				t.Errorf("data after the trailer")
			}
			return out
		}
		out[name] = fmt.Sprintf("%o %s", mode, data)
	}
	t.Fatal("no trailer")
	return nil
}

func TestArchive(t *testing.T) {
	a := NewArchive()
	a.File("/bin/busybox", 0o755, []byte("BB"))
	a.Symlink("bin/sh", "busybox")
	a.Dir("tmp", 0o1777&0o777)
	a.File("tests/0/testdata/x", 0o644, []byte("hello"))
	var buf bytes.Buffer
	if err := a.Write(&buf); err != nil {
		t.Fatal(err)
	}
	zr, err := gzipReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"bin":                "40755 ",
		"bin/busybox":        "100755 BB",
		"bin/sh":             "120777 busybox",
		"tests":              "40755 ",
		"tests/0":            "40755 ",
		"tests/0/testdata":   "40755 ",
		"tests/0/testdata/x": "100644 hello",
		"tmp":                "40777 ",
	}
	if diff := cmp.Diff(want, readNewc(t, raw)); diff != "" {
		t.Errorf("archive (-want +got):\n%s", diff)
	}
}

func TestInitScript(t *testing.T) {
	s := initScript([]string{"/lib/modules/wireguard.ko"}, []Run{{Name: "internal/x", Args: []string{"-test.run=^TestA$|it's"}, Env: []string{"A=b c"}}})
	for _, want := range []string{
		"insmod /lib/modules/wireguard.ko || fail \"insmod /lib/modules/wireguard.ko\"\n",
		"echo 'wgbird-guest: run internal/x'\n",
		`(cd /tests/0 && exec env 'A=b c' ./test '-test.v' '-test.count=1' '-test.run=^TestA$|it'\''s') 2>&1` + "\n",
		"echo \"wgbird-guest: exit internal/x $?\"\n",
		"echo 'wgbird-guest: done'\npoweroff -f\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("init script lacks %q:\n%s", want, s)
		}
	}
}

func gzipReader(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }
