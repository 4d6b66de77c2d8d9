package wireguard

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/health"
)

// CheckName is the Name of the checks Evaluate returns.
const CheckName = "wireguard"

// Spec is what a healthy device looks like.
type Spec struct {
	// Interface is the device name, e.g. "wg0".
	Interface string
	// ListenPort is the UDP port the device must listen on; 0 accepts any
	// port except 0.
	ListenPort int
	// PortSeen says ListenPort was not configured but seen at the first
	// healthy read (the daemon expects that port from then on).
	PortSeen bool
	// MinPeers is the fewest peers a healthy device has; 0 checks nothing
	// (the configuration defaults it to 1).
	MinPeers int
	// MaxHandshakeAge fails the check when the newest handshake of any peer
	// is older, or when there has been none; 0 turns the check off (an idle
	// server has no handshakes).
	MaxHandshakeAge time.Duration
	// IgnorePeers are left out of the peer count and of the newest
	// handshake: wgbird's own probe peer is always configured and
	// handshakes every interval, and must not make a server without
	// clients, or an idle one, look healthy.
	IgnorePeers []wgtypes.Key
}

// Evaluate judges the result of one Reader.Summary call at time now, which
// must have left spec.IgnorePeers out of its counts. It does no I/O.
//
// A device that is gone is a hard failure: not found (os.ErrNotExist), or
// its UAPI socket refuses connections (syscall.ECONNREFUSED: wireguard-go
// died and left a stale socket). Everything else that is wrong is a soft
// failure: no answer in time, no private key, a wrong or zero listen port,
// too few peers, a too old newest handshake, or any other read error.
func Evaluate(spec Spec, dev *Summary, err error, now time.Time) health.Check {
	c := health.Check{Name: CheckName}
	name := spec.Interface
	if name == "" && dev != nil {
		name = dev.Name
	}
	if err != nil {
		c.Detail, c.Hard = describeError(name, err)
		return c
	}
	if dev == nil {
		c.Detail = fmt.Sprintf("no data read from device %s", name)
		return c
	}

	var problems []string
	if !dev.PrivateKey {
		problems = append(problems, "private key not set")
	}
	switch {
	case dev.ListenPort == 0 && spec.ListenPort != 0:
		problems = append(problems, fmt.Sprintf("listen port not set, want %d", spec.ListenPort))
	case dev.ListenPort == 0:
		problems = append(problems, "listen port not set")
	case spec.ListenPort != 0 && dev.ListenPort != spec.ListenPort && spec.PortSeen:
		problems = append(problems, fmt.Sprintf("listen port %d, want %d (seen at the first healthy read; set listen_port to choose)", dev.ListenPort, spec.ListenPort))
	case spec.ListenPort != 0 && dev.ListenPort != spec.ListenPort:
		problems = append(problems, fmt.Sprintf("listen port %d, want %d", dev.ListenPort, spec.ListenPort))
	}
	if dev.Counted < spec.MinPeers {
		problems = append(problems, fmt.Sprintf("%s, want at least %d", peers(dev.Counted), spec.MinPeers))
	}
	newest := dev.NewestCounted
	if spec.MaxHandshakeAge > 0 {
		switch {
		case newest.IsZero():
			problems = append(problems, fmt.Sprintf("no handshake yet, want one within %s", spec.MaxHandshakeAge))
		case now.Sub(newest) > spec.MaxHandshakeAge:
			problems = append(problems, fmt.Sprintf("newest handshake %s ago, want within %s", age(now.Sub(newest)), spec.MaxHandshakeAge))
		}
	}
	if len(problems) > 0 {
		c.Detail = strings.Join(problems, "; ")
		return c
	}

	c.OK = true
	hs := "no handshake yet"
	if !newest.IsZero() {
		hs = fmt.Sprintf("newest handshake %s ago", age(now.Sub(newest)))
	}
	c.Detail = fmt.Sprintf("listen %d, %s, %s", dev.ListenPort, peers(dev.Counted), hs)
	return c
}

// describeError turns a Reader.Device error into a detail for a person and
// says whether it means the device is gone.
func describeError(name string, err error) (detail string, hard bool) {
	var timeout *TimeoutError
	switch {
	case errors.As(err, &timeout) && errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("wireguard-go not answering within %s", roundHuman(timeout.After)), false
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("device %s not read before the deadline", name), false
	case errors.Is(err, context.Canceled):
		return fmt.Sprintf("reading device %s canceled", name), false
	case errors.Is(err, os.ErrNotExist):
		return fmt.Sprintf("device %s not found", name), true
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("device %s gone: its UAPI socket refuses connections (wireguard-go not running)", name), true
	}
	return err.Error(), false
}

func peers(n int) string {
	if n == 1 {
		return "1 peer"
	}
	return fmt.Sprintf("%d peers", n)
}

// age rounds a duration since an event to whole seconds; a clock that went
// backwards counts as now.
func age(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d.Round(time.Second)
}
