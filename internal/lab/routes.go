package lab

import (
	"net/netip"
	"slices"

	"github.com/wgbird/wgbird/internal/labjudge"
)

// Nexthops returns the gateways of the router's kernel route to
// VIPPrefix, sorted; none when there is no route.
func (l *Lab) Nexthops() ([]netip.Addr, error) { return labjudge.Nexthops(l.NS("router"), VIPPrefix) }

// Watch starts a labjudge.Watcher on the router's routes to VIPPrefix.
// Close it when done.
func (l *Lab) Watch() (*labjudge.Watcher, error) { return labjudge.Watch(l.NS("router"), VIPPrefix) }

// All is true for a set containing both servers of Servers (a lab with
// three servers has AllRouted).
func All(nh []netip.Addr) bool { return allOf(Servers, nh) }

// AllRouted is true for a set containing every server of the lab.
func (l *Lab) AllRouted(nh []netip.Addr) bool { return allOf(l.Servers(), nh) }

func allOf(servers []Server, nh []netip.Addr) bool {
	for _, s := range servers {
		if !slices.Contains(nh, s.Addr) {
			return false
		}
	}
	return true
}
