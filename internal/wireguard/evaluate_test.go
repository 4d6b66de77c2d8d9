package wireguard

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/health"
)

var now = time.Date(2025, 5, 20, 12, 0, 0, 0, time.UTC)

// testKey is a fixed non-zero key so that tests need no randomness.
var testKey = wgtypes.Key{1, 2, 3}

func device(port int, handshakes ...time.Duration) *wgtypes.Device {
	d := &wgtypes.Device{Name: "wg0", Type: wgtypes.Userspace, PrivateKey: testKey, ListenPort: port}
	for i, ago := range handshakes {
		p := wgtypes.Peer{PublicKey: wgtypes.Key{byte(i), 9}}
		if ago != never {
			p.LastHandshakeTime = now.Add(-ago)
		}
		d.Peers = append(d.Peers, p)
	}
	return d
}

// never marks a peer without any handshake.
const never = time.Duration(math.MinInt64)

func TestEvaluate(t *testing.T) {
	spec := Spec{Interface: "wg0", ListenPort: 51820, MinPeers: 1}
	withAge := spec
	withAge.MaxHandshakeAge = 3 * time.Minute
	anyPort := spec
	anyPort.ListenPort = 0
	// probeKey is the key of the first peer device() makes.
	probeKey := wgtypes.Key{0, 9}
	ignoreProbe := spec
	ignoreProbe.IgnorePeers = []wgtypes.Key{probeKey}
	ignoreProbeAge := withAge
	ignoreProbeAge.IgnorePeers = []wgtypes.Key{probeKey}

	noKey := device(51820, never)
	noKey.PrivateKey = wgtypes.Key{}

	wrapped := func(err error) error { return fmt.Errorf("reading wireguard device %q: %w", "wg0", err) }
	refused := wrapped(&net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)})

	soft := func(detail string) health.Check { return health.Check{Name: "wireguard", Detail: detail} }
	hard := func(detail string) health.Check { return health.Check{Name: "wireguard", Hard: true, Detail: detail} }
	ok := func(detail string) health.Check { return health.Check{Name: "wireguard", OK: true, Detail: detail} }

	tests := []struct {
		name string
		spec Spec
		dev  *wgtypes.Device
		err  error
		want health.Check
	}{
		{"healthy", spec, device(51820, 14*time.Second, never, time.Hour), nil,
			ok("listen 51820, 3 peers, newest handshake 14s ago")},
		{"healthy one peer without handshake", spec, device(51820, never), nil,
			ok("listen 51820, 1 peer, no handshake yet")},
		{"any port accepted", anyPort, device(40000, never), nil,
			ok("listen 40000, 1 peer, no handshake yet")},
		{"handshake within max age", withAge, device(51820, 2*time.Minute+59*time.Second), nil,
			ok("listen 51820, 1 peer, newest handshake 2m59s ago")},
		{"handshake in the future counts as now", spec, device(51820, -time.Second), nil,
			ok("listen 51820, 1 peer, newest handshake 0s ago")},
		{"min peers 0 accepts none", Spec{Interface: "wg0"}, device(51820), nil,
			ok("listen 51820, 0 peers, no handshake yet")},

		{"private key not set", spec, noKey, nil, soft("private key not set")},
		{"wrong port", spec, device(51821, never), nil, soft("listen port 51821, want 51820")},
		{"port changed since the first healthy read", Spec{Interface: "wg0", ListenPort: 51820, PortSeen: true, MinPeers: 1}, device(51821, never), nil,
			soft("listen port 51821, want 51820 (seen at the first healthy read; set listen_port to choose)")},
		{"port not set", spec, device(0, never), nil, soft("listen port not set, want 51820")},
		{"port not set, any wanted", anyPort, device(0, never), nil, soft("listen port not set")},
		{"no peers", spec, device(51820), nil, soft("0 peers, want at least 1")},
		{"too few peers", Spec{Interface: "wg0", MinPeers: 3}, device(51820, never, never), nil,
			soft("2 peers, want at least 3")},
		{"handshake too old", withAge, device(51820, 5*time.Minute, 10*time.Minute), nil,
			soft("newest handshake 5m0s ago, want within 3m0s")},
		{"no handshake with max age", withAge, device(51820, never), nil,
			soft("no handshake yet, want one within 3m0s")},
		{"several problems", withAge, func() *wgtypes.Device { d := device(0); d.PrivateKey = wgtypes.Key{}; return d }(), nil,
			soft("private key not set; listen port not set, want 51820; 0 peers, want at least 1; no handshake yet, want one within 3m0s")},
		{"nil device without error", spec, nil, nil, soft("no data read from device wg0")},

		{"ignored peer not counted", ignoreProbe, device(51820, time.Second, 20*time.Second), nil,
			ok("listen 51820, 1 peer, newest handshake 20s ago")},
		{"only the ignored peer", ignoreProbe, device(51820, time.Second), nil,
			soft("0 peers, want at least 1")},
		{"ignored peer's handshake does not count", ignoreProbeAge, device(51820, time.Second, 10*time.Minute), nil,
			soft("newest handshake 10m0s ago, want within 3m0s")},
		{"ignored peer absent", ignoreProbe, func() *wgtypes.Device { d := device(51820, never, never, never); d.Peers = d.Peers[1:]; return d }(), nil,
			ok("listen 51820, 2 peers, no handshake yet")},
		{"ignored key of no peer changes nothing", Spec{Interface: "wg0", MinPeers: 1, IgnorePeers: []wgtypes.Key{{7}}}, device(51820, time.Second), nil,
			ok("listen 51820, 1 peer, newest handshake 1s ago")},

		{"not answering", spec, nil, &TimeoutError{Device: "wg0", After: 250 * time.Millisecond, Err: context.DeadlineExceeded},
			soft("wireguard-go not answering within 250ms")},
		{"not answering, read shared", spec, nil, &TimeoutError{Device: "wg0", After: 250 * time.Millisecond, Pending: 1234 * time.Millisecond, Err: context.DeadlineExceeded},
			soft("wireguard-go not answering within 250ms")},
		{"not answering, deadline measured from the call", spec, nil, &TimeoutError{Device: "wg0", After: 249*time.Millisecond + 300*time.Microsecond, Err: context.DeadlineExceeded},
			soft("wireguard-go not answering within 250ms")},
		{"deadline already passed", spec, nil, wrapped(context.DeadlineExceeded),
			soft("device wg0 not read before the deadline")},
		{"canceled", spec, nil, &TimeoutError{Device: "wg0", Err: context.Canceled},
			soft("reading device wg0 canceled")},
		{"other read error", spec, nil, wrapped(errors.New("wguser: invalid key=value pair")),
			soft(`reading wireguard device "wg0": wguser: invalid key=value pair`)},

		{"device not found", spec, nil, wrapped(os.ErrNotExist), hard("device wg0 not found")},
		{"stale socket", spec, nil, refused,
			hard("device wg0 gone: its UAPI socket refuses connections (wireguard-go not running)")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The tests write devices as wgctrl reads them; the
			// summary is what Reader.Summary makes of them.
			var sum *Summary
			if tt.dev != nil {
				s := FromWgctrl(tt.dev, tt.spec.IgnorePeers)
				sum = &s
			}
			got := Evaluate(tt.spec, sum, tt.err, now)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Evaluate (-want +got):\n%s", diff)
			}
		})
	}
}
