//go:build integration

package wireguard

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestPeersMatchWgctrl: Reader.Peers, which parses a real wireguard-go's
// UAPI answer itself, gives what wgctrl's full read of the same device
// gives (IPv4 and IPv6 endpoints, a peer without one).
func TestPeersMatchWgctrl(t *testing.T) {
	d := startDevice(t, "wgtBpeers")
	var conf strings.Builder
	fmt.Fprintf(&conf, "[Interface]\nPrivateKey = %s\nListenPort = 51820\n", newKey(t))
	for i := range 50 {
		fmt.Fprintf(&conf, "\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.100.0.%d/32\n", newKey(t).PublicKey(), i)
		switch i % 3 {
		case 0:
			fmt.Fprintf(&conf, "Endpoint = 192.0.2.%d:%d\n", i+1, 40000+i)
		case 1:
			fmt.Fprintf(&conf, "Endpoint = [2001:db8::%x]:%d\n", i, 40000+i)
		}
	}
	d.wgRun(t, conf.String(), "setconf", d.name, "/dev/stdin")
	r := newTestReader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ps, err := r.Peers(ctx, d.name)
	if err != nil {
		t.Fatalf("Peers: %v", err)
	}
	dev, err := r.Device(ctx, d.name)
	if err != nil {
		t.Fatalf("Device: %v", err)
	}
	if len(ps.Peers) != 50 {
		t.Errorf("Peers read %d peers, want 50", len(ps.Peers))
	}
	// wireguard-go lists its peers in map order, another each read.
	byKey := cmpopts.SortSlices(func(a, b Peer) bool { return bytes.Compare(a.Key[:], b.Key[:]) < 0 })
	if diff := cmp.Diff(PeersFromWgctrl(dev), ps, eqAddrPort, byKey); diff != "" {
		t.Errorf("Peers against wgctrl's read (-wgctrl +Peers):\n%s", diff)
	}
}
