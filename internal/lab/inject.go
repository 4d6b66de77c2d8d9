package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/wgbird/wgbird/internal/labjudge"
	"github.com/wgbird/wgbird/internal/labproc"
)

// Faults beyond the Modes, for the fault tests and the soak: BIRD killed
// or hung, wgbird hung or restarted, wireguard-go restarted bare, link
// storms; and what a test measures of a wgbird (goroutines, fds, RSS,
// metrics, UAPI reads in flight: labproc reads them).

// StartBird starts node's BIRD unless it runs (continuing it if it was
// stopped) and waits until its control socket answers.
func (l *Lab) StartBird(ctx context.Context, node string) error { return l.startBird(ctx, node) }

// KillBird kills node's BIRD with SIGKILL, as a crash would: its control
// socket file stays behind, refusing connections.
func (l *Lab) KillBird(ctx context.Context, node string) error {
	pid := labproc.PidOf(l.path(node, "bird.pid"), "bird")
	if pid == 0 {
		return fmt.Errorf("BIRD is not running on %s", node)
	}
	return labproc.StopPid(ctx, pid, syscall.SIGKILL, 0)
}

// HangBird stops node's BIRD with SIGSTOP: its control socket accepts
// connections and never answers, and its BGP and BFD go silent.
// ContinueBird (or Heal) resumes it.
func (l *Lab) HangBird(node string) error {
	return l.signal("bird.pid", "bird", node, syscall.SIGSTOP)
}

// ContinueBird resumes a BIRD that HangBird stopped.
func (l *Lab) ContinueBird(node string) error {
	return l.signal("bird.pid", "bird", node, syscall.SIGCONT)
}

// HangWgbird stops server's wgbird with SIGSTOP; ContinueWgbird (or Heal)
// resumes it.
func (l *Lab) HangWgbird(server string) error {
	return l.signal("wgbird.pid", l.wgbirdName(), server, syscall.SIGSTOP)
}

// ContinueWgbird resumes a wgbird that HangWgbird stopped.
func (l *Lab) ContinueWgbird(server string) error {
	return l.signal("wgbird.pid", l.wgbirdName(), server, syscall.SIGCONT)
}

func (l *Lab) signal(pidFile, name, node string, sig syscall.Signal) error {
	pid := labproc.PidOf(l.path(node, pidFile), name)
	if pid == 0 {
		return fmt.Errorf("%s is not running on %s", labproc.Comm(name), node)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signalling %s on %s: %w", labproc.Comm(name), node, err)
	}
	return nil
}

// RestartWgbird stops server's wgbird with SIGTERM (the lab's on_stop is
// keep: BIRD is left as it is) and starts it again with the lab's current
// configuration.
func (l *Lab) RestartWgbird(ctx context.Context, server string) error {
	if pid := l.WgbirdPid(server); pid > 0 {
		if err := labproc.StopPid(ctx, pid, syscall.SIGTERM, 5*time.Second); err != nil {
			return fmt.Errorf("stopping wgbird on %s: %w", server, err)
		}
	}
	return l.ensureWgbird(ctx, server)
}

// RestartWireGuardBare kills server's wireguard-go and starts a new one
// that has no configuration yet: wg0 exists, down, without addresses,
// key, listen port or peers, as just after a restart before wg setconf.
// Heal configures it.
func (l *Lab) RestartWireGuardBare(ctx context.Context, server string) error {
	if pid := l.WireGuardGoPid(server); pid > 0 {
		if err := labproc.StopPid(ctx, pid, syscall.SIGKILL, 0); err != nil {
			return err
		}
	}
	return l.startWireGuardGo(ctx, server)
}

// WG runs wg(8) in node's namespace against its private /run/wireguard:
// "set wg0 listen-port 51820".
func (l *Lab) WG(ctx context.Context, node string, args ...string) (string, error) {
	return l.wg(ctx, node, args...)
}

// WGConfFile returns the path of node's wg(8) config of wg0.
func (l *Lab) WGConfFile(node string) string { return l.path(node, "wg0.conf") }

// FlapLink sets server's wg0 down and up again n times, spread evenly over
// the given duration, through one netlink socket in the server's
// namespace. It returns after the last flap with wg0 up.
func (l *Lab) FlapLink(ctx context.Context, server string, n int, over time.Duration) error {
	ns, err := netns.GetFromName(l.NS(server))
	if err != nil {
		return fmt.Errorf("opening %s namespace: %w", server, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("opening netlink in %s: %w", server, err)
	}
	defer h.Close()
	if err := h.SetSocketTimeout(labproc.CmdTimeout); err != nil {
		return fmt.Errorf("setting netlink timeout: %w", err)
	}
	lk, err := h.LinkByName(WGInterface)
	if err != nil {
		return fmt.Errorf("finding wg0 on %s: %w", server, err)
	}
	start := time.Now()
	for i := range n {
		if err := h.LinkSetDown(lk); err != nil {
			return fmt.Errorf("flap %d: setting wg0 down: %w", i, err)
		}
		if err := h.LinkSetUp(lk); err != nil {
			return fmt.Errorf("flap %d: setting wg0 up: %w", i, err)
		}
		next := start.Add(over * time.Duration(i+1) / time.Duration(n))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(next)):
		}
	}
	return nil
}

// WgbirdStats measures server's wgbird.
func (l *Lab) WgbirdStats(ctx context.Context, server string) (labproc.ProcStats, error) {
	pid := l.WgbirdPid(server)
	if pid == 0 {
		return labproc.ProcStats{}, fmt.Errorf("wgbird is not running on %s", server)
	}
	st, err := labproc.ReadStats(pid)
	if err != nil {
		return st, err
	}
	m, err := l.WgbirdMetrics(ctx, server)
	if err != nil {
		return st, err
	}
	g, ok := m["go_goroutines"]
	if !ok {
		return st, errors.New("wgbird's metrics have no go_goroutines")
	}
	st.Goroutines = int(g)
	return st, nil
}

// WgbirdMetrics scrapes server's wgbird metrics endpoint (MetricsListen in
// the server's namespace).
func (l *Lab) WgbirdMetrics(ctx context.Context, server string) (labproc.Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := labjudge.DialInNS(ctx, l.NS(server), "tcp", MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("scraping wgbird on %s: %w", server, err)
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	if _, err := fmt.Fprintf(c, "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", MetricsListen); err != nil {
		return nil, fmt.Errorf("scraping wgbird on %s: %w", server, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, fmt.Errorf("scraping wgbird on %s: %w", server, err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := bufio.NewReader(resp.Body).WriteTo(&b); err != nil {
		return nil, fmt.Errorf("scraping wgbird on %s: %w", server, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping wgbird on %s: %s", server, resp.Status)
	}
	return labproc.ParseMetrics(b.String())
}

// UAPIReads counts the connections server's wgbird holds to wireguard-go's
// UAPI socket: its reads of wg0 in flight, and the liveness check's kept
// connection between checks (a hung device's read is on that one). A connection to a hung
// wireguard-go waits unaccepted in the listen queue, where ss shows its
// peer as "* 0"; an accepted one has the UAPI socket's path as its
// peer's address. Only sockets wgbird connected count (their own address
// is "*"), not those its control socket accepted. (A connection to a hung
// BIRD would look the same as the first kind: do not hang both at once.)
func (l *Lab) UAPIReads(ctx context.Context, server string) (int, error) {
	pid := l.WgbirdPid(server)
	if pid == 0 {
		return 0, fmt.Errorf("wgbird is not running on %s", server)
	}
	out, err := labproc.InNS(ctx, l.NS(server), "ss", "-xpan")
	if err != nil {
		return 0, err
	}
	return labproc.UAPIConns(out, pid, "/wireguard/"+WGInterface+".sock"), nil
}
