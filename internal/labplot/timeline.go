package labplot

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/wgbird/wgbird/internal/lab"
	"github.com/wgbird/wgbird/internal/labbench"
	"github.com/wgbird/wgbird/internal/labjudge"
)

// The picture's colours. Its lanes, top to bottom: one per server for
// the router's nexthops, the client's pings, one per server for wgbird's
// transitions.
var (
	green = color.RGBA{R: 0x1a, G: 0x9e, B: 0x3a, A: 0xff}
	red   = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	blue  = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	gray  = color.Gray{Y: 0x70}
)

// Title is the picture's title for a timeline.
func Title(tl labbench.Timeline) string {
	to := "off"
	if tl.Takeover {
		to = "on"
	}
	return fmt.Sprintf("%s on %s, takeover %s: outage %s", tl.Mode, tl.Server, to, labbench.FormatDuration(labjudge.LongestOutage(tl.Echoes, tl.Fault, tl.Heal).Duration()))
}

// Timeline draws tl as an SVG document: x is seconds since the fault.
func Timeline(tl labbench.Timeline, servers []lab.Server, w io.Writer) error {
	return Draw(tl, servers, "svg", w)
}

// Draw draws tl in format: svg, png, pdf (gonum/plot's formats).
func Draw(tl labbench.Timeline, servers []lab.Server, format string, w io.Writer) error {
	p := plot.New()
	p.Title.Text = Title(tl)
	p.X.Label.Text = "seconds since the fault"
	x := func(at time.Time) float64 { return at.Sub(tl.Fault).Seconds() }
	xmin, xmax := -1.0, x(tl.End)
	n := len(servers)
	// y positions
	routeY := func(i int) float64 { return float64(2*n + 1 - i) }
	pingY := float64(n + 1)
	wgY := func(i int) float64 { return float64(n - i) }
	var ticks []plot.Tick
	for i, s := range servers {
		ticks = append(ticks, plot.Tick{Value: routeY(i), Label: "router → " + s.Name})
		ticks = append(ticks, plot.Tick{Value: wgY(i), Label: "wgbird " + s.Name})
	}
	ticks = append(ticks, plot.Tick{Value: pingY, Label: "client pings"})
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Min, p.Y.Max = 0.3, float64(2*n+1)+0.7
	p.X.Min, p.X.Max = xmin, xmax
	p.X.Tick.Marker = secondTicks{}

	// The router's nexthops: a bar while a server is in the route.
	for i, s := range servers {
		var segs [][2]float64
		var open *float64
		for _, c := range tl.Nexthops {
			at := max(x(c.At), xmin)
			in := slices.Contains(c.Nexthops, s.Addr)
			if in && open == nil {
				v := at
				open = &v
			}
			if !in && open != nil {
				segs = append(segs, [2]float64{*open, at})
				open = nil
			}
		}
		if open != nil {
			segs = append(segs, [2]float64{*open, xmax})
		}
		for _, sg := range segs {
			l, err := plotter.NewLine(plotter.XYs{{X: sg[0], Y: routeY(i)}, {X: sg[1], Y: routeY(i)}})
			if err != nil {
				return err
			}
			l.Color, l.Width = blue, vg.Points(6)
			p.Add(l)
		}
	}

	// The client's pings: a green dot per answered echo, a small red one
	// below per lost echo.
	var ok, lost plotter.XYs
	for _, e := range tl.Echoes {
		if e.Sent.Before(tl.Fault.Add(-time.Second)) {
			continue
		}
		if e.Answered() {
			ok = append(ok, plotter.XY{X: x(e.Sent), Y: pingY + 0.15})
		} else {
			lost = append(lost, plotter.XY{X: x(e.Sent), Y: pingY - 0.15})
		}
	}
	for _, set := range []struct {
		xys plotter.XYs
		c   color.Color
		r   vg.Length
	}{{ok, green, 1.6}, {lost, red, 1.2}} {
		if len(set.xys) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(set.xys)
		if err != nil {
			return err
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: set.c, Radius: vg.Points(float64(set.r)), Shape: draw.CircleGlyph{}}
		p.Add(sc)
	}

	// wgbird's transitions: a mark and a word.
	for i, s := range servers {
		var xys plotter.XYs
		var words []string
		for _, tr := range tl.Transitions {
			if tr.Server != s.Name {
				continue
			}
			xys = append(xys, plotter.XY{X: max(x(tr.At), xmin), Y: wgY(i)})
			word, _, _ := strings.Cut(tr.Text, ":")
			words = append(words, " "+word)
		}
		if len(xys) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			return err
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: gray, Radius: vg.Points(3), Shape: draw.TriangleGlyph{}}
		p.Add(sc)
		lb, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: words})
		if err != nil {
			return err
		}
		for j := range lb.TextStyle {
			lb.TextStyle[j].Font.Size = vg.Points(8)
			lb.TextStyle[j].YAlign = draw.YBottom
			// Alternate above and below so close words do not overlap.
			if j%2 == 1 {
				lb.TextStyle[j].YAlign = draw.YTop
			}
		}
		p.Add(lb)
	}

	// The fault and the heal.
	for _, m := range []struct {
		at   time.Time
		name string
	}{{tl.Fault, "fault"}, {tl.Heal, "heal"}} {
		l, err := plotter.NewLine(plotter.XYs{{X: x(m.at), Y: p.Y.Min}, {X: x(m.at), Y: p.Y.Max}})
		if err != nil {
			return err
		}
		l.Color, l.Dashes = gray, []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(l)
		lb, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: x(m.at), Y: p.Y.Max}}, Labels: []string{" " + m.name}})
		if err != nil {
			return err
		}
		lb.TextStyle[0].YAlign = draw.YTop
		lb.TextStyle[0].Font.Size = vg.Points(9)
		p.Add(lb)
	}
	wt, err := p.WriterTo(9*vg.Inch, 3.6*vg.Inch, format)
	if err != nil {
		return fmt.Errorf("drawing the timeline: %w", err)
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return fmt.Errorf("drawing the timeline: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// secondTicks marks every second and labels every fifth.
type secondTicks struct{}

func (secondTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for v := math.Ceil(lo); v <= hi; v++ {
		t := plot.Tick{Value: v}
		if int(v)%5 == 0 {
			t.Label = strconv.Itoa(int(v))
		}
		ts = append(ts, t)
	}
	return ts
}
