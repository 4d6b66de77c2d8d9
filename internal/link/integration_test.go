//go:build integration

package link

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/wgbird/wgbird/internal/health"
)

// These tests run in an anonymous network namespace created for each test
// (netns.New): it holds no name that could collide with other test runs,
// and it and every link in it vanish when the test ends, even if the
// process crashes, so there are no leftovers to delete at start. Link names
// carry the prefix wgtB anyway.
//
// Read and Subscribe work in the network namespace of the calling OS
// thread. The test goroutine therefore locks its OS thread and switches it
// into the namespace for the whole test (Cleanup switches it back), and
// Subscribe runs on a goroutine of its own that does the same. Threads
// that cannot be switched back are never unlocked, so the runtime discards
// them.

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("needs root (network namespaces)")
	}
	t.Skip("needs root (network namespaces)")
}

// enterNewNetns locks the test goroutine to its OS thread, moves the thread
// into a new network namespace and returns that namespace.
func enterNewNetns(t *testing.T) netns.NsHandle {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("getting the current network namespace: %v", err)
	}
	ns, err := netns.New()
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatalf("creating a network namespace: %v", err)
	}
	t.Cleanup(func() {
		ns.Close()
		if err := netns.Set(orig); err != nil {
			// Stay locked: the thread dies with the goroutine.
			t.Errorf("restoring the network namespace: %v", err)
			return
		}
		orig.Close()
		runtime.UnlockOSThread()
	})
	return ns
}

// openTun creates a TUN device in the current thread's namespace and keeps
// it attached to the returned fd. A persistent one survives closing the fd
// (then without carrier); another one vanishes with it.
func openTun(t *testing.T, name string, persist bool) int {
	t.Helper()
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("opening /dev/net/tun: %v", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		t.Fatalf("ifreq for %s: %v", name, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		t.Fatalf("creating TUN %s: %v", name, err)
	}
	if persist {
		if err := unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1); err != nil {
			t.Fatalf("making TUN %s persistent: %v", name, err)
		}
	}
	return fd
}

func mustLink(t *testing.T, name string) netlink.Link {
	t.Helper()
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatalf("finding link %s: %v", name, err)
	}
	return l
}

func addAddr(t *testing.T, name string, p netip.Prefix) {
	t.Helper()
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD // present at once, not tentative
	}
	if err := netlink.AddrAdd(mustLink(t, name), a); err != nil {
		t.Fatalf("adding %s to %s: %v", p, name, err)
	}
}

func delAddr(t *testing.T, name string, p netip.Prefix) {
	t.Helper()
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if err := netlink.AddrDel(mustLink(t, name), a); err != nil {
		t.Fatalf("deleting %s from %s: %v", p, name, err)
	}
}

func setUp(t *testing.T, name string, up bool) {
	t.Helper()
	set := netlink.LinkSetDown
	if up {
		set = netlink.LinkSetUp
	}
	if err := set(mustLink(t, name)); err != nil {
		t.Fatalf("setting %s up=%v: %v", name, up, err)
	}
}

func mustRead(t *testing.T, name string) State {
	t.Helper()
	r := &Reader{}
	defer r.Close()
	s, err := r.Read(name)
	if err != nil {
		t.Fatalf("Read(%s): %v", name, err)
	}
	return s
}

// subscriber runs Subscribe in namespace ns.
type subscriber struct {
	events chan Event
	cancel context.CancelFunc
	done   chan struct{}
}

func startSubscriber(t *testing.T, ns netns.NsHandle) *subscriber {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &subscriber{events: make(chan Event, 256), cancel: cancel, done: make(chan struct{})}
	setErr := make(chan error, 1)
	go func() {
		defer close(s.done)
		runtime.LockOSThread() // never unlocked: the thread is discarded
		if err := netns.Set(ns); err != nil {
			setErr <- err
			return
		}
		setErr <- nil
		Subscribe(ctx, slog.New(slog.NewTextHandler(os.Stderr, nil)), s.events)
	}()
	if err := <-setErr; err != nil {
		t.Fatalf("entering the namespace for Subscribe: %v", err)
	}
	t.Cleanup(s.stop)

	// Subscribe gives no signal once it listens, so change lo's MTU until
	// an event for it arrives. Events are forwarded only once both the link
	// and the address subscriptions are open.
	lo := mustLink(t, "lo")
	deadline := time.Now().Add(5 * time.Second)
	for mtu := 65000; ; mtu-- {
		if err := netlink.LinkSetMTU(lo, mtu); err != nil {
			t.Fatalf("setting lo's MTU: %v", err)
		}
		select {
		case e := <-s.events:
			if e.Index == lo.Attrs().Index {
				s.drain()
				return s
			}
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("Subscribe reported no event within 5s")
		}
	}
}

func (s *subscriber) stop() {
	s.cancel()
	<-s.done
}

func (s *subscriber) drain() {
	for {
		select {
		case <-s.events:
		default:
			return
		}
	}
}

// expect waits up to two seconds for an event matching want, ignoring
// others, and reports how long it took.
func (s *subscriber) expect(t *testing.T, what string, want Event) {
	t.Helper()
	start := time.Now()
	timeout := time.After(2 * time.Second)
	for {
		select {
		case e := <-s.events:
			if e == want {
				t.Logf("%s: event %+v after %v", what, e, time.Since(start))
				return
			}
		case <-timeout:
			t.Fatalf("%s: no event %+v within 2s", what, want)
		}
	}
}

// testLifecycle checks what Read, Evaluate and Subscribe report for the
// link name, up and without addresses, as a WireGuard device is: its VIPs
// added, one deleted, one present with another prefix length, the link set
// down, and at last removed by remove (wireguard-go dying, or ip link del
// of a kernel device). operState is what the kernel reports for such a
// link while it is up.
func testLifecycle(t *testing.T, sub *subscriber, name, operState string, remove func()) {
	t.Helper()
	p := netip.MustParsePrefix
	vip4, vip6 := p("192.168.20.1/24"), p("fd00:20::1/64")
	vips := []netip.Prefix{vip4, vip6}
	addAddr(t, name, vip4)
	addAddr(t, name, vip6)
	index := mustLink(t, name).Attrs().Index

	got := mustRead(t, name)
	t.Logf("Read(%s) = %+v", name, got)
	// The kernel adds a random IPv6 link-local address of its own; leave
	// it out of the comparison.
	got.Addrs = withoutLinkLocal(got.Addrs)
	want := State{Exists: true, Index: index, Up: true, Running: true, OperState: operState, Addrs: []netip.Prefix{vip4, vip6}}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
		t.Errorf("Read(%s) (-want +got):\n%s", name, diff)
	}
	wantCheck := health.Check{Name: "link", OK: true, Detail: name + " up, VIPs 192.168.20.1/24, fd00:20::1/64 present"}
	if diff := cmp.Diff(wantCheck, Evaluate(name, vips, got, nil)); diff != "" {
		t.Errorf("Evaluate(%s) (-want +got):\n%s", name, diff)
	}

	// A Reader (one rtnl socket kept open, as the daemon reads) reads
	// the same State as Read (vishvananda/netlink) at every step.
	r := &Reader{}
	defer r.Close()
	check := func(what string, want health.Check) {
		t.Helper()
		s, err := readNetlink(name)
		if diff := cmp.Diff(want, Evaluate(name, vips, s, err)); diff != "" {
			t.Errorf("%s: Evaluate of vishvananda/netlink's read (-want +got):\n%s", what, diff)
		}
		rs, rerr := r.Read(name)
		if diff := cmp.Diff(want, Evaluate(name, vips, rs, rerr)); diff != "" {
			t.Errorf("%s: Evaluate of a Reader's read (-want +got):\n%s", what, diff)
		}
		if diff := cmp.Diff(s, rs, cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
			t.Errorf("%s: a Reader's read differs from vishvananda/netlink's (-netlink +Reader):\n%s", what, diff)
		}
	}
	check("VIPs present", wantCheck)
	// A point-to-point address (a local address and a peer) is read as
	// vishvananda/netlink reads it: the local address with a full length.
	ptp := &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 9, 9, 1), Mask: net.CIDRMask(32, 32)},
		Peer: &net.IPNet{IP: net.IPv4(10, 9, 9, 2), Mask: net.CIDRMask(32, 32)}}
	if err := netlink.AddrAdd(mustLink(t, name), ptp); err != nil {
		t.Fatalf("adding a point-to-point address to %s: %v", name, err)
	}
	check("a point-to-point address too", wantCheck)
	if s, err := r.Read(name); err != nil || !slices.Contains(s.Addrs, p("10.9.9.1/32")) {
		t.Errorf("a Reader's read with a point-to-point address = %+v, %v; want 10.9.9.1/32 among the addresses", s, err)
	}
	hard := func(detail string) health.Check { return health.Check{Name: "link", Hard: true, Detail: detail} }

	sub.drain()
	delAddr(t, name, vip4)
	sub.expect(t, "VIP deleted", Event{Index: index})
	check("VIP deleted", hard("VIP 192.168.20.1/24 missing on "+name))

	sub.drain()
	addAddr(t, name, p("192.168.20.1/32"))
	sub.expect(t, "VIP with another length", Event{Index: index})
	check("VIP with another length", hard("VIP 192.168.20.1/24 missing on "+name+" (present as 192.168.20.1/32)"))
	addAddr(t, name, vip4)

	sub.drain()
	setUp(t, name, false)
	sub.expect(t, "set down", Event{Index: index, Name: name})
	check("set down", hard("link "+name+" is down"))

	sub.drain()
	remove()
	sub.expect(t, "link gone", Event{Index: index, Name: name})
	check("link gone", hard("link "+name+" not found"))
}

func withoutLinkLocal(ps []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if !p.Addr().IsLinkLocalUnicast() {
			out = append(out, p)
		}
	}
	return out
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("counting open fds: %v", err)
	}
	return len(ents)
}

func TestReadAndEvents(t *testing.T) {
	requireRoot(t)
	ns := enterNewNetns(t)

	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	sub := startSubscriber(t, ns)

	// A TUN device as wireguard-go holds it: attached to an fd, up.
	tunFD := openTun(t, "wgtBtun0", false)
	closeTun := sync.OnceFunc(func() { unix.Close(tunFD) })
	t.Cleanup(closeTun)
	setUp(t, "wgtBtun0", true)
	testLifecycle(t, sub, "wgtBtun0", "unknown", closeTun) // like wireguard-go dying: the TUN vanishes

	if got := mustRead(t, "wgtBnothere"); !cmp.Equal(got, State{}) {
		t.Errorf("Read(wgtBnothere) = %+v, want State{}", got)
	}

	// A persistent TUN without a process has no carrier.
	unix.Close(openTun(t, "wgtBtun1", true))
	setUp(t, "wgtBtun1", true)
	hard := func(detail string) health.Check { return health.Check{Name: "link", Hard: true, Detail: detail} }
	got := mustRead(t, "wgtBtun1")
	if !got.Exists || !got.Up || got.Running {
		t.Errorf("Read(detached wgtBtun1) = %+v, want up without carrier", got)
	}
	if diff := cmp.Diff(hard("link wgtBtun1 has no carrier"), Evaluate("wgtBtun1", nil, got, nil)); diff != "" {
		t.Errorf("Evaluate(detached wgtBtun1) (-want +got):\n%s", diff)
	}
	sub.drain()
	tun1 := mustLink(t, "wgtBtun1")
	if err := netlink.LinkDel(tun1); err != nil {
		t.Fatalf("deleting wgtBtun1: %v", err)
	}
	sub.expect(t, "link deleted", Event{Index: tun1.Attrs().Index, Name: "wgtBtun1"})

	// A veth whose peer goes down loses its carrier.
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "wgtBv0"}, PeerName: "wgtBv1"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("adding veth: %v", err)
	}
	setUp(t, "wgtBv0", true)
	setUp(t, "wgtBv1", true)
	vethIndex := mustLink(t, "wgtBv0").Attrs().Index
	deadline := time.Now().Add(2 * time.Second)
	for got = mustRead(t, "wgtBv0"); got.OperState != "up"; got = mustRead(t, "wgtBv0") {
		if time.Now().After(deadline) {
			t.Fatalf("veth wgtBv0 not oper-up within 2s: %+v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !got.Up || !got.Running {
		t.Errorf("Read(wgtBv0) = %+v, want up and running", got)
	}
	sub.drain()
	setUp(t, "wgtBv1", false)
	sub.expect(t, "veth peer down", Event{Index: vethIndex, Name: "wgtBv0"})
	got = mustRead(t, "wgtBv0")
	t.Logf("veth without carrier: %+v", got)
	if diff := cmp.Diff(hard("link wgtBv0 has no carrier"), Evaluate("wgtBv0", nil, got, nil)); diff != "" {
		t.Errorf("Evaluate(wgtBv0 without carrier) (-want +got):\n%s", diff)
	}

	// Cancel: Subscribe returns, its sockets and goroutines are gone.
	stopped := make(chan struct{})
	go func() { sub.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Subscribe did not return within 5s of cancel")
	}
	deadline = time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines || openFDs(t) > fds {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("after Subscribe returned: %d goroutines (before %d), %d fds (before %d)\n%s",
				runtime.NumGoroutine(), goroutines, openFDs(t), fds, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStopWithFullChannels checks that closing a real subscription whose
// update channel is full (its reader blocked sending) returns and leaves
// no goroutine behind.
func TestStopWithFullChannels(t *testing.T) {
	requireRoot(t)
	enterNewNetns(t)
	goroutines := runtime.NumGoroutine()

	sub, err := openNetlink()
	if err != nil {
		t.Fatalf("openNetlink: %v", err)
	}
	lo := mustLink(t, "lo")
	for i := range 2 * updateBuffer {
		if err := netlink.LinkSetMTU(lo, 60000+i); err != nil {
			t.Fatalf("setting lo's MTU: %v", err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(sub.updates) < updateBuffer && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%d link updates queued", len(sub.updates))

	stopped := make(chan struct{})
	go func() { sub.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("stop did not return within 5s")
	}
	deadline = time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after stop, want at most %d", runtime.NumGoroutine(), goroutines)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
