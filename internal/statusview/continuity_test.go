package statusview

import (
	"strings"
	"testing"
	"time"

	"github.com/wgbird/wgbird/internal/api"
)

func TestContinuityLines(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 10, 0, time.UTC)
	s := api.ServiceStatus{Name: "wg0", Interface: "wg0", State: "announced", Continuity: &api.Continuity{
		VIPSource: &api.VIPSource{InPlace: false, Detail: "ipv4: VIP 192.168.20.1 is not on this host", Warnings: []string{"client 203.0.113.9:40000 (peer abcdefgh…): no route to 203.0.113.9"}},
		Takeover: &api.TakeoverStatus{Enabled: true, Stats: api.TakeoverStats{Takeovers: 3, Answered: 2, Unanswered: 1},
			Last: &api.Takeover{Peer: "Q4g49ZBbRfEMzZEs0oL+RdvOeeAmv/XFAYr0N/x3W1U=", Endpoint: "198.18.0.6:40002", At: now.Add(-5 * time.Second), Method: "readd", Via: "group", FirstPacketBack: 3 * time.Millisecond}},
		Group: &api.Group{Port: 51871, Members: []api.GroupMember{
			{Address: "10.0.5.1", State: "announced", Heard: now.Add(-400 * time.Millisecond), Peers: 2},
			{Address: "10.0.7.1", State: "unknown", Silent: true, Refused: 3, LastRefusal: "replayed or reordered (sequence not newer)"},
		}},
	}}
	out := View{Services: []api.ServiceStatus{s}, Now: now}.String()
	for _, want := range []string{
		"VIP source:  NOT IN PLACE: ipv4: VIP 192.168.20.1 is not on this host",
		"! client 203.0.113.9:40000 (peer abcdefgh…): no route to 203.0.113.9",
		"takeovers:   3 (2 answered, 1 unanswered); last 10:00:05 (5s ago): peer Q4g49ZBb… at 198.18.0.6:40002 (readd, via group), first packet back after 3ms",
		"10.0.5.1      announced",
		"10.0.7.1      SILENT     never",
		"3 (replayed or reordered (sequence not newer))",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}
