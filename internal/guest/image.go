package guest

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Image is what goes into the guest's initramfs.
type Image struct {
	// Busybox is a statically linked busybox; its applets are linked into
	// /bin.
	Busybox string
	// Tools are host programs copied to the same path in the guest, with
	// the shared libraries ldd lists for them (ip, wg, bird ...).
	Tools []string
	// Files are more host files for the guest: guest path -> host path
	// (executable).
	Files map[string]string
	// Kernel provides the modules /init loads.
	Kernel *Kernel
	// Runs are the test binaries, run one after the other.
	Runs []Run
}

// Run is one test binary and how to run it in the guest.
type Run struct {
	// Name identifies the run in the console, e.g. "internal/wireguard".
	Name string
	// Binary is the test binary on the host (static: CGO_ENABLED=0).
	Binary string
	// Dir is copied into the guest as the binary's working directory
	// (testdata and all), or "" for an empty one.
	Dir string
	// Args follow -test.v, e.g. "-test.run=^TestKernel".
	Args []string
	// Env are NAME=value settings for the binary.
	Env []string
}

// ModulesEnv names the environment variable in which /init passes the
// guest's modules (paths, in load order) to the tests.
const ModulesEnv = "WGBIRD_GUEST_MODULES"

// Console markers /init prints around each run; ParseConsole reads them.
const (
	markRun  = "wgbird-guest: run "
	markExit = "wgbird-guest: exit "
	markDone = "wgbird-guest: done"
	markErr  = "wgbird-guest: error "
)

// Build packs the initramfs.
func (im *Image) Build(ctx context.Context) (*Archive, error) {
	a := NewArchive()
	for _, d := range []string{"proc", "sys", "dev", "tmp", "run", "root", "etc"} {
		a.Dir(d, 0o755)
	}
	a.Dir("tmp", 0o1777)
	a.Symlink("var/run", "/run")
	a.File("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n"))
	a.File("etc/group", 0o644, []byte("root:x:0:\n"))

	if err := addFile(a, "bin/busybox", im.Busybox, 0o755); err != nil {
		return nil, err
	}
	applets, err := exec.CommandContext(ctx, im.Busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("listing busybox applets: %w", err)
	}
	for _, ap := range strings.Fields(string(applets)) {
		if !a.Has("bin/" + ap) {
			a.Symlink("bin/"+ap, "busybox")
		}
	}
	for _, t := range im.Tools {
		if err := addTool(ctx, a, t); err != nil {
			return nil, err
		}
	}
	for to, from := range im.Files {
		if err := addFile(a, to, from, 0o755); err != nil {
			return nil, err
		}
	}
	var mods []string
	for _, m := range im.Kernel.ModuleFiles {
		p := "lib/modules/" + filepath.Base(m)
		if err := addFile(a, p, m, 0o644); err != nil {
			return nil, err
		}
		mods = append(mods, "/"+p)
	}
	for i, r := range im.Runs {
		dir := fmt.Sprintf("tests/%d", i)
		if r.Dir != "" {
			if err := addTree(a, dir, r.Dir); err != nil {
				return nil, err
			}
		}
		if err := addFile(a, dir+"/test", r.Binary, 0o755); err != nil {
			return nil, err
		}
	}
	a.File("init", 0o755, []byte(initScript(mods, im.Runs)))
	return a, nil
}

// initScript mounts the pseudo file systems, loads the modules, runs each
// test binary between markers and powers off. A module that does not load
// is reported and ends the boot.
func initScript(modules []string, runs []Run) string {
	var b strings.Builder
	b.WriteString(`#!/bin/sh
# Copied host tools (ip, wg) before busybox applets of the same name.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root CI=true
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
ln -s /proc/self/fd /dev/fd; ln -s fd/0 /dev/stdin; ln -s fd/1 /dev/stdout; ln -s fd/2 /dev/stderr
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
echo 1 > /proc/sys/kernel/panic_on_oops
ip link set lo up
fail() { echo "` + markErr + `$*"; echo "` + markDone + `"; poweroff -f; }
`)
	for _, m := range modules {
		fmt.Fprintf(&b, "insmod %s || fail \"insmod %s\"\n", m, m)
	}
	// For the tests that unload and load a module themselves.
	fmt.Fprintf(&b, "export %s='%s'\n", ModulesEnv, strings.Join(modules, " "))
	for i, r := range runs {
		args := append([]string{"-test.v", "-test.count=1"}, r.Args...)
		fmt.Fprintf(&b, "echo '%s%s'\n", markRun, r.Name)
		fmt.Fprintf(&b, "(cd /tests/%d && exec env %s ./test %s) 2>&1\n", i, shellQuote(r.Env), shellQuote(args))
		fmt.Fprintf(&b, "echo \"%s%s $?\"\n", markExit, r.Name)
	}
	fmt.Fprintf(&b, "echo '%s'\npoweroff -f\n", markDone)
	return b.String()
}

func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

func addFile(a *Archive, to, from string, perm fs.FileMode) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("adding to the initramfs: %w", err)
	}
	a.File(to, perm, b)
	return nil
}

// addTree copies the regular files and directories under from to dir.
func addTree(a *Archive, dir, from string) error {
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		to := filepath.ToSlash(filepath.Join(dir, rel))
		switch {
		case d.IsDir():
			a.Dir(to, 0o755)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			return addFile(a, to, p, info.Mode().Perm())
		}
		return nil
	})
}

// addTool copies a dynamically or statically linked program and the
// libraries ldd lists for it to the same paths in the guest.
func addTool(ctx context.Context, a *Archive, path string) error {
	if err := addFile(a, path, path, 0o755); err != nil {
		return err
	}
	if static, err := IsStatic(path); err != nil || static {
		return err
	}
	out, err := exec.CommandContext(ctx, "ldd", path).Output()
	if err != nil {
		return fmt.Errorf("ldd %s: %w\n%s", path, err, out)
	}
	libs, err := ParseLdd(out)
	if err != nil {
		return fmt.Errorf("ldd %s: %w", path, err)
	}
	for _, l := range libs {
		if !a.Has(l) {
			if err := addFile(a, l, l, 0o755); err != nil {
				return err
			}
		}
	}
	return nil
}

// ParseLdd returns the library paths in ldd's output, the dynamic loader
// included; the vDSO has no file and is left out. A library ldd could not
// find is an error.
func ParseLdd(out []byte) ([]string, error) {
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "linux-vdso") || strings.HasPrefix(line, "linux-gate") {
			continue
		}
		if name, rest, ok := strings.Cut(line, " => "); ok {
			if strings.HasPrefix(rest, "not found") {
				return nil, fmt.Errorf("library %s not found", name)
			}
			line = rest
		}
		if p := strings.Fields(line); len(p) > 0 && strings.HasPrefix(p[0], "/") {
			libs = append(libs, p[0])
		}
	}
	return libs, sc.Err()
}

// IsStatic reports whether the ELF program at path has no dynamic loader.
func IsStatic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}
