package labsoak

import (
	"net/netip"
	"strings"
	"testing"
)

// A pinned client is reported either way and fails the soak only with
// FailOnPin.
func TestSoakResultPins(t *testing.T) {
	pin := Pin{Cycle: 12, Client: "client2", Endpoint: netip.MustParseAddrPort("198.18.0.1:1024")}
	for _, failOnPin := range []bool{false, true} {
		r := Result{Cycles: 100, EndpointChecks: 300, Pins: []Pin{pin, {Cycle: 40, Client: "idle", Err: "idle has no server peer"}}, FailOnPin: failOnPin}
		if r.OK() == failOnPin {
			t.Errorf("FailOnPin %v: OK() = %v with 2 pins", failOnPin, r.OK())
		}
		var b strings.Builder
		r.Write(&b)
		for _, want := range []string{
			"endpoints: 2 of 300 client endpoint checks (one per client after every cycle) off the service address (target 0), 0 of them after a port change\n",
			"PINNED cycle 12: client2's endpoint is 198.18.0.1:1024\n",
			"PINNED cycle 40: idle's endpoint unreadable: idle has no server peer\n",
		} {
			if !strings.Contains(b.String(), want) {
				t.Errorf("summary has no %q:\n%s", want, b.String())
			}
		}
	}
	nat := Pin{Cycle: 3, Client: "idle", Endpoint: netip.MustParseAddrPort("198.18.0.1:51820"), Inside: netip.MustParseAddrPort("10.0.5.1:51820")}
	if got, want := nat.String(), "cycle 3: idle's endpoint is 198.18.0.1:51820, which the router maps to 10.0.5.1:51820"; got != want {
		t.Errorf("pin = %q, want %q", got, want)
	}
	if r := (Result{EndpointChecks: 300, FailOnPin: true}); !r.OK() {
		t.Error("no pins, FailOnPin: not OK")
	}
	// After a port change WireGuard sent from the new port: such a pin is
	// reported, and fails nothing.
	pc := Pin{Cycle: 81, Client: "client", Endpoint: netip.MustParseAddrPort("198.18.0.1:51821"), PortChange: true}
	r := Result{EndpointChecks: 300, FailOnPin: true, Pins: []Pin{pc}}
	if !r.OK() || len(r.Failing()) != 0 {
		t.Errorf("a pin after a port change fails the soak: OK %v, failing %v", r.OK(), r.Failing())
	}
	if got, want := pc.String(), "cycle 81: client's endpoint is 198.18.0.1:51821 (after a port change: WireGuard sent from the new port)"; got != want {
		t.Errorf("pin = %q, want %q", got, want)
	}
	r.Pins = append(r.Pins, pin)
	if r.OK() {
		t.Error("a pin without a port change does not fail the soak")
	}
}
