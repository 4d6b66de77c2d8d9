//go:build integration

package lab

import (
	"context"
	"strings"
	"testing"

	"github.com/wgbird/wgbird/internal/labtest"
)

// The OSPF lab: the same topology, servers announcing the VIP prefix as an
// OSPF external route (--routing ospf), brought up once for the tests
// below and torn down by TestMain.
var (
	ospfLab    *Lab
	ospfLabErr error
)

const (
	ospfLabDir    = "/run/wgo-itest"
	ospfLabPrefix = "wgo"
)

func sharedOSPFLab(t *testing.T) *Lab {
	t.Helper()
	return upOnce(t, &ospfLab, &ospfLabErr, "the OSPF lab", Config{Dir: ospfLabDir, Prefix: ospfLabPrefix, Routing: RoutingOSPF, Thresholds: testThresholds, Log: labtest.Logger()})
}

// TestOSPFFailover: over OSPF, a hung or killed wireguard-go and a drain
// withdraw the server's nexthop from the router's kernel table while the
// other server's stays, and heal brings it back only after rise, as over
// BGP.
func TestOSPFFailover(t *testing.T) {
	l := sharedOSPFLab(t)
	ready(t, l)
	out, err := l.birdc(context.Background(), "router", "show", "protocols", "ospf_servers")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Running") {
		t.Fatalf("router's OSPF protocol not running:\n%s", out)
	}
	for i, mode := range []Mode{Hang, Kill, Drain} {
		t.Run(string(mode), func(t *testing.T) {
			m, err := ParseMode(string(mode))
			if err != nil {
				t.Fatal(err)
			}
			failAndHeal(t, l, m, Servers[i%2])
		})
	}
}
