package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/wgbird/wgbird/internal/labproc"
)

// netipHost returns the /32 (or /128) of a prefix's address.
func netipHost(p netip.Prefix) string {
	return netip.PrefixFrom(p.Addr(), p.Addr().BitLen()).String()
}

// buildTopology creates the namespaces and links. Every veth is created
// with both ends already inside lab namespaces, so nothing of the lab ever
// appears in the host's namespace.
//
//	client, client2, idle ── inet (br0: "the internet", ClientNet)
//	                            │ wan 198.18.0.1 (PublicAddr): DNAT, masquerade
//	                          router (br0 10.0.0.1/8, BIRD, ECMP)
//	                            │
//	                  s1 10.0.5.1, s2 10.0.7.1 (, s3 10.0.9.1)
func (l *Lab) buildTopology(ctx context.Context) error {
	r, inet := l.NS("router"), l.NS("inet")
	cmds := [][]string{}
	for _, n := range append([]string{"router", "inet"}, serverNames(l.Servers())...) {
		cmds = append(cmds,
			[]string{"netns", "add", l.NS(n)},
			[]string{"-n", l.NS(n), "link", "set", "lo", "up"})
	}
	cmds = append(cmds,
		[]string{"-n", r, "link", "add", "br0", "type", "bridge", "forward_delay", "0", "stp_state", "0"},
		[]string{"-n", r, "addr", "add", RouterAddr.String(), "dev", "br0"},
		[]string{"-n", r, "link", "set", "br0", "up"},
		[]string{"-n", inet, "link", "add", "br0", "type", "bridge", "forward_delay", "0", "stp_state", "0"},
		[]string{"-n", inet, "link", "set", "br0", "up"},
		[]string{"-n", r, "link", "add", "wan", "type", "veth", "peer", "name", "router", "netns", inet},
		[]string{"-n", inet, "link", "set", "router", "master", "br0", "up"},
		[]string{"-n", r, "addr", "add", ClientRouterAddr.String(), "dev", "wan"},
		[]string{"-n", r, "link", "set", "wan", "up"},
	)
	for _, s := range l.Servers() {
		ns := l.NS(s.Name)
		cmds = append(cmds,
			[]string{"-n", r, "link", "add", s.Name, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"-n", r, "link", "set", s.Name, "master", "br0", "up"},
			[]string{"-n", ns, "addr", "add", netip.PrefixFrom(s.Addr, RouterAddr.Bits()).String(), "dev", "eth0"},
			[]string{"-n", ns, "link", "set", "eth0", "up"},
			// A home network's servers reach the internet through the
			// router.
			[]string{"-n", ns, "route", "add", "default", "via", RouterAddr.Addr().String()},
		)
	}
	for _, argv := range cmds {
		if _, err := labproc.Run(ctx, "ip", argv...); err != nil {
			return fmt.Errorf("building topology: %w", err)
		}
	}
	if _, err := labproc.InNS(ctx, r, "sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
		return fmt.Errorf("enabling forwarding on the router: %w", err)
	}
	// A fixed ECMP hash seed (kernel 6.11 and later) makes every run of the
	// lab send each client to the same server; older kernels hash with a
	// random seed per boot, which placeClients copes with.
	if _, err := labproc.InNS(ctx, r, "sysctl", "-qw", "net.ipv4.fib_multipath_hash_seed="+strconv.Itoa(hashSeed)); err != nil {
		l.log.Debug("no fixed ECMP hash seed", "err", err)
	}
	if !l.cfg.Routed {
		if err := l.natRules(ctx); err != nil {
			return err
		}
	}
	placed, err := l.placeClients(ctx)
	if err != nil {
		return err
	}
	l.placed = placed
	if err := l.savePlacement(); err != nil {
		return err
	}
	cmds = nil
	for _, c := range l.Clients() {
		ns := l.NS(c.Name)
		cmds = append(cmds,
			[]string{"netns", "add", ns},
			[]string{"-n", ns, "link", "set", "lo", "up"},
			[]string{"-n", inet, "link", "add", c.Name, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"-n", inet, "link", "set", c.Name, "master", "br0", "up"},
			[]string{"-n", ns, "addr", "add", netip.PrefixFrom(placed[c.Name].Addr, ClientNet.Bits()).String(), "dev", "eth0"},
			[]string{"-n", ns, "link", "set", "eth0", "up"},
			[]string{"-n", ns, "route", "add", "default", "via", PublicAddr.String()},
		)
	}
	for _, argv := range cmds {
		if _, err := labproc.Run(ctx, "ip", argv...); err != nil {
			return fmt.Errorf("building topology: %w", err)
		}
	}
	return nil
}

// hashSeed is the router's fib_multipath_hash_seed.
const hashSeed = 0x77676268

func serverNames(ss []Server) []string {
	n := make([]string, len(ss))
	for i, s := range ss {
		n[i] = s.Name
	}
	return n
}

// NATRules is the router's nftables ruleset of the home network: the
// public WireGuard port forwarded to the VIP, one public port per server
// forwarded to its own address (DirectEndpoint), everything else the
// servers send to the internet masqueraded, and nothing from the internet
// let in that is not a forwarded port or an answer.
func NATRules(servers []Server) string {
	var b strings.Builder
	fmt.Fprintf(&b, `table ip wgbird_lab {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "wan" ip daddr %s udp dport %d dnat to %s:%d
`, PublicAddr, ListenPort, VIP.Addr(), ListenPort)
	for i, s := range AllServers {
		if slices.ContainsFunc(servers, func(x Server) bool { return x.Name == s.Name }) {
			fmt.Fprintf(&b, "		iifname \"wan\" ip daddr %s udp dport %d dnat to %s:%d\n", PublicAddr, DirectPortBase+i+1, s.Addr, ListenPort)
		}
	}
	b.WriteString(`	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan" masquerade
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname "wan" ct state established,related accept
		iifname "wan" ct status dnat accept
		iifname "wan" drop
	}
}
`)
	return b.String()
}

// natRules loads NATRules into the router namespace.
func (l *Lab) natRules(ctx context.Context) error {
	file := l.path("router", "nat.nft")
	if err := os.WriteFile(file, []byte(NATRules(l.Servers())), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	if _, err := labproc.InNS(ctx, l.NS("router"), "nft", "-f", file); err != nil {
		return fmt.Errorf("loading the router's NAT rules: %w", err)
	}
	return nil
}

// Down tears the lab down, idempotently and whatever state it is in: it
// kills every process in the lab's namespaces, unmounts whatever is still
// mounted under the lab dir, deletes the namespaces (and with them every
// link of the lab), removes stray host links with the lab's prefix, and
// removes the lab dir. It refuses to remove a directory that is not a lab
// dir.
func (l *Lab) Down(ctx context.Context) error {
	var errs []error
	// Processes first: a namespace lives as long as a process in it.
	var pids []int
	for _, n := range allNodes {
		ns := l.NS(n)
		if !nsExists(ns) {
			continue
		}
		out, err := labproc.Run(ctx, "ip", "netns", "pids", ns)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range strings.Fields(out) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 0 && pid != os.Getpid() {
				pids = append(pids, pid)
			}
		}
	}
	// Processes recorded in pid files that are not in a namespace (any
	// more) but are still ours. A stale pid file's pid may have been
	// reused by another lab's process of the same name (pids wrap at
	// 32768 on a busy machine): only a process that points at this lab's
	// dir is killed.
	for _, n := range allNodes {
		for _, d := range []struct{ file, name string }{
			{"bird.pid", "bird"}, {"wireguard-go.pid", "wireguard-go"}, {"wgbird.pid", l.wgbirdName()},
		} {
			if pid := labproc.PidOf(l.path(n, d.file), d.name); pid > 0 && l.owns(pid, n) {
				pids = append(pids, pid)
			}
		}
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("killing pid %d: %w", pid, err))
		}
	}
	for _, pid := range pids {
		if err := labproc.WaitGone(ctx, pid, 5*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if err := labproc.UnmountUnder(l.cfg.Dir); err != nil {
		errs = append(errs, err)
	}
	for _, n := range allNodes {
		ns := l.NS(n)
		if !nsExists(ns) {
			continue
		}
		if _, err := labproc.Run(ctx, "ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	if links, err := netlink.LinkList(); err == nil {
		for _, lk := range links {
			if strings.HasPrefix(lk.Attrs().Name, l.cfg.Prefix+"-") {
				if err := netlink.LinkDel(lk); err != nil {
					errs = append(errs, fmt.Errorf("deleting link %s: %w", lk.Attrs().Name, err))
				}
			}
		}
	}
	if err := l.removeDir(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (l *Lab) wgbirdName() string {
	if l.cfg.Wgbird == "" {
		return "wgbird"
	}
	return l.cfg.Wgbird
}

func (l *Lab) removeDir() error {
	dir := l.cfg.Dir
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading lab dir: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, markerFile)); err != nil && len(entries) > 0 {
		return fmt.Errorf("refusing to remove %s: not a lab dir (no %s)", dir, markerFile)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing lab dir: %w", err)
	}
	return nil
}

func nsExists(name string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", name))
	return err == nil
}

// owns reports whether pid is a process this lab started on node: BIRD
// and wgbird name the lab's files on their command line; wireguard-go
// (and wgbird) run with node's wireguard dir of the lab bound on
// /run/wireguard.
func (l *Lab) owns(pid int, node string) bool {
	return labproc.ArgUnder(pid, l.cfg.Dir) || labproc.BindsWireGuard(pid, l.path(node, "wireguard"))
}
