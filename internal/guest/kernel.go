package guest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// MetaPackage is Debian's package that depends on the current cloud
// kernel image.
const MetaPackage = "linux-image-cloud-amd64"

// Modules are the kernel modules the guest loads (each after the modules it
// depends on): WireGuard; veth, TUN, dummy links and the lab's bridge; the
// xfrm and netfilter netlink families, which a normal host loads on demand
// and netlink.NewHandleAt opens; and nftables with the NAT, masquerade and
// conntrack expressions of the lab's home router.
var Modules = []string{"wireguard", "veth", "tun", "dummy", "bridge", "xfrm_user", "nfnetlink",
	"nf_tables", "nft_chain_nat", "nft_nat", "nft_masq", "nft_ct"}

// Kernel is an extracted kernel image with the modules the guest loads.
type Kernel struct {
	// Package is the Debian package it came from, e.g.
	// linux-image-6.1.0-57-cloud-amd64.
	Package string
	// Release is the kernel release, e.g. 6.1.0-57-cloud-amd64.
	Release string
	// Vmlinuz is the kernel image's path.
	Vmlinuz string
	// ModuleFiles are the .ko files to insmod, in order.
	ModuleFiles []string
}

// FetchKernel returns the cloud kernel from cacheDir, or downloads its
// package with apt-get download, extracts it with dpkg-deb -x (nothing is
// installed), keeps the image and the modules the guest loads under
// cacheDir/PACKAGE and removes the rest. logf reports what it does.
func FetchKernel(ctx context.Context, cacheDir string, logf func(string, ...any)) (*Kernel, error) {
	pkg, err := currentPackage(ctx)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cacheDir, pkg)
	if k, err := loadKernel(pkg, dir); err == nil {
		return k, nil
	}
	for _, tool := range []string{"apt-get", "dpkg-deb", "depmod"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("extracting %s: %w (apt-get install kmod for depmod)", pkg, err)
		}
	}
	logf("downloading and extracting %s into %s", pkg, dir)
	tmp, err := os.MkdirTemp(cacheDir, ".extract-")
	if err != nil {
		return nil, fmt.Errorf("extracting %s: %w", pkg, err)
	}
	defer os.RemoveAll(tmp)
	// apt-get download writes into the current directory; as root it warns
	// that _apt cannot access a private one, so the directory is world-
	// accessible.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	if err := runIn(ctx, tmp, "apt-get", "download", pkg); err != nil {
		return nil, err
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, pkg+"_*.deb"))
	if len(debs) != 1 {
		return nil, fmt.Errorf("apt-get download %s: want one .deb in %s, found %d", pkg, tmp, len(debs))
	}
	root := filepath.Join(tmp, "root")
	if err := runIn(ctx, tmp, "dpkg-deb", "-x", debs[0], root); err != nil {
		return nil, err
	}
	release := strings.TrimPrefix(pkg, "linux-image-")
	if err := runIn(ctx, tmp, "depmod", "-b", root, release); err != nil {
		return nil, err
	}
	modDir := filepath.Join(root, "lib/modules", release)
	dep, err := os.ReadFile(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("extracting %s: %w", pkg, err)
	}
	order, err := ModuleOrder(dep, Modules...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkg, err)
	}

	staging := filepath.Join(tmp, "cache")
	if err := os.MkdirAll(filepath.Join(staging, "modules"), 0o755); err != nil {
		return nil, err
	}
	if err := copyFile(filepath.Join(root, "boot", "vmlinuz-"+release), filepath.Join(staging, "vmlinuz")); err != nil {
		return nil, err
	}
	var list strings.Builder
	for _, m := range order {
		base := filepath.Base(m)
		if err := copyFile(filepath.Join(modDir, m), filepath.Join(staging, "modules", base)); err != nil {
			return nil, err
		}
		list.WriteString(base + "\n")
	}
	if err := os.WriteFile(filepath.Join(staging, "modules.order"), []byte(list.String()), 0o644); err != nil {
		return nil, err
	}
	os.RemoveAll(dir)
	if err := os.Rename(staging, dir); err != nil {
		return nil, fmt.Errorf("caching %s: %w", pkg, err)
	}
	return loadKernel(pkg, dir)
}

// currentPackage asks apt which kernel package the cloud meta package
// depends on now.
func currentPackage(ctx context.Context) (string, error) {
	if _, err := exec.LookPath("apt-cache"); err != nil {
		return "", fmt.Errorf("finding the cloud kernel: %w", err)
	}
	out, err := exec.CommandContext(ctx, "apt-cache", "depends", MetaPackage).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends %s: %w (run apt-get update first)", MetaPackage, err)
	}
	pkg := DependsOn(out, "linux-image-")
	if pkg == "" {
		return "", fmt.Errorf("apt-cache depends %s names no linux-image- package (run apt-get update first):\n%s", MetaPackage, out)
	}
	return pkg, nil
}

// DependsOn returns the first package in apt-cache depends output whose
// name starts with prefix, or "".
func DependsOn(aptCacheDepends []byte, prefix string) string {
	sc := bufio.NewScanner(bytes.NewReader(aptCacheDepends))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Depends: ")
		if ok && strings.HasPrefix(rest, prefix) {
			return strings.Fields(rest)[0]
		}
	}
	return ""
}

func loadKernel(pkg, dir string) (*Kernel, error) {
	k := &Kernel{Package: pkg, Release: strings.TrimPrefix(pkg, "linux-image-"), Vmlinuz: filepath.Join(dir, "vmlinuz")}
	if _, err := os.Stat(k.Vmlinuz); err != nil {
		return nil, err
	}
	list, err := os.ReadFile(filepath.Join(dir, "modules.order"))
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool)
	for _, m := range strings.Fields(string(list)) {
		k.ModuleFiles = append(k.ModuleFiles, filepath.Join(dir, "modules", m))
		have[moduleName(m)] = true
	}
	for _, m := range Modules {
		if !have[m] {
			return nil, fmt.Errorf("module %s not cached", m) // Modules grew: extract again
		}
	}
	return k, nil
}

// ModuleOrder returns the modules.dep paths of the named modules and of
// everything they depend on, each after its dependencies, without
// repeats. modules.dep lists a module's dependencies so that loading them
// from last to first works (as modprobe does).
func ModuleOrder(modulesDep []byte, names ...string) ([]string, error) {
	deps := make(map[string][]string) // module name -> [its path, deps...]
	sc := bufio.NewScanner(bytes.NewReader(modulesDep))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		deps[moduleName(mod)] = append([]string{mod}, strings.Fields(rest)...)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading modules.dep: %w", err)
	}
	var order []string
	seen := make(map[string]bool)
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			order = append(order, p)
		}
	}
	for _, n := range names {
		d, ok := deps[n]
		if !ok {
			return nil, fmt.Errorf("module %s not in modules.dep", n)
		}
		for i := len(d) - 1; i >= 1; i-- {
			add(d[i])
		}
		add(d[0])
	}
	return order, nil
}

// moduleName turns kernel/net/ipv4/udp_tunnel.ko(.xz) into udp_tunnel.
func moduleName(p string) string {
	base := filepath.Base(p)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

func runIn(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}
