package labplot

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wgbird/wgbird/internal/lab"
	"github.com/wgbird/wgbird/internal/labbench"
	"github.com/wgbird/wgbird/internal/labjudge"
)

// fixture is a hang on s1: withdrawn at 0.5 s, the client's pings lost
// from 0 to 15.3 s, s1 back 3 s after the heal at 20 s.
func fixture() labbench.Timeline {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	s1, s2 := lab.Servers[0].Addr, lab.Servers[1].Addr
	tl := labbench.Timeline{Mode: lab.Hang, Server: "s1", Fault: t0, Heal: at(20), End: at(26),
		Nexthops: []labjudge.Change{{At: at(-1), Nexthops: []netip.Addr{s1, s2}}, {At: at(0.5), Nexthops: []netip.Addr{s2}}, {At: at(23), Nexthops: []netip.Addr{s1, s2}}},
		Transitions: []labbench.Transition{
			{At: at(0.45), Server: "s1", Text: "withdrawn: 2 unhealthy in a row: wireguard: timeout"},
			{At: at(23), Server: "s1", Text: "announced: 3 healthy in a row"},
		}}
	for i := 0; i < 270; i++ {
		e := labjudge.Echo{Seq: i, Sent: at(-1 + float64(i)/10)}
		if s := float64(i)/10 - 1; s < 0 || s >= 15.3 {
			e.Reply = e.Sent.Add(time.Millisecond)
		}
		tl.Echoes = append(tl.Echoes, e)
	}
	return tl
}

func TestTimelineSVG(t *testing.T) {
	tl := fixture()
	var buf bytes.Buffer
	if err := Timeline(tl, lab.Servers, &buf); err != nil {
		t.Fatal(err)
	}
	svg := buf.String()
	// Well-formed XML.
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
	}
	for _, want := range []string{"<svg", "router → s1", "router → s2", "client pings", "wgbird s1", "withdrawn", "announced", "fault", "heal",
		"hang on s1, takeover off: outage 15.30 s"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the SVG lacks %q", want)
		}
	}
	// One dot per echo: 117 answered, 153 lost, each a circle path.
	if n := strings.Count(svg, "fill:#D62728"); n != 153 {
		t.Errorf("%d red dots, want one per lost ping (153)", n)
	}
	if n := strings.Count(svg, "fill:#1A9E3A"); n != 117 {
		t.Errorf("%d green dots, want one per answered ping (117)", n)
	}
}
