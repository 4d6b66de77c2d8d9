package metrics

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/daemon"
	"github.com/wgbird/wgbird/internal/fakes"
)

// TestScrapeRunningDaemon runs a daemon on fakes with the metrics wired as
// run.go wires them, and scrapes them over HTTP.
func TestScrapeRunningDaemon(t *testing.T) {
	vip := netip.MustParsePrefix("192.168.20.1/24")
	cfg := &config.Config{Services: []config.Service{{
		Name: "wg0", Interface: "wg0", VIPs: []netip.Prefix{vip}, Protocols: []string{"wg_vip4"},
		Interval: 20 * time.Millisecond, FastInterval: 10 * time.Millisecond, Timeout: 100 * time.Millisecond,
		Rise: 2, Fall: 2, MinPeers: 1,
		Exec: []config.Exec{{Name: "nginx", Command: []string{"true"}, Timeout: time.Second}},
	}}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}

	m := New("test")
	b := fakes.NewBIRD(fakes.Static("wg_vip4", false))
	d, err := daemon.New(cfg, daemon.Deps{
		BIRD:      m.InstrumentBIRD(b),
		WireGuard: fakes.NewWireGuard(fakes.Device(51820, 2, time.Now().Add(-5*time.Second))),
		Links:     fakes.NewLinks(fakes.UpLink(vip)),
		Exec:      fakes.Exec(true, "exit status 0"),
		Log:       log,
		Observer:  m,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Start("127.0.0.1:0", m.Handler(), log)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("closing the metrics server: %v", err)
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	url := "http://" + srv.Addr().String() + "/metrics"
	want := map[string]float64{
		`wgbird_service_healthy{service="wg0"}`:                                             1,
		`wgbird_service_announced{service="wg0"}`:                                           1,
		`wgbird_service_drained{service="wg0"}`:                                             0,
		`wgbird_check_ok{check="wireguard",service="wg0"}`:                                  1,
		`wgbird_check_ok{check="link",service="wg0"}`:                                       1,
		`wgbird_check_ok{check="exec:nginx",service="wg0"}`:                                 1,
		`wgbird_wireguard_peers{service="wg0"}`:                                             2,
		`wgbird_service_transitions_total{reason="recovered",service="wg0",to="announced"}`: 1,
		`wgbird_bird_command_errors_total`:                                                  0,
	}
	// Rise 2 at 20 ms: announced within a second; wait up to 10 s on a
	// loaded machine.
	var got map[string]float64
	deadline := time.Now().Add(10 * time.Second)
	for {
		got = scrape(t, url, want)
		if cmp.Equal(want, got) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("scraped (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"show protocols", "show status", "show protocols", "enable wg_vip4"}, b.Commands()[:4]); diff != "" {
		t.Errorf("BIRD commands (-want +got):\n%s", diff)
	}
	body := get(t, url)
	for _, s := range []string{
		`wgbird_bird_command_duration_seconds_count{command="enable"} 1`,
		`wgbird_wireguard_newest_handshake_age_seconds{service="wg0"}`,
		`wgbird_check_duration_seconds_bucket{check="wireguard",service="wg0",le="+Inf"}`,
		`wgbird_build_info{version="test"} 1`,
		`go_goroutines`,
		`process_open_fds`,
	} {
		if !strings.Contains(body, s) {
			t.Errorf("scrape lacks %s", s)
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(b)
}

// scrape returns the values of the series named in want ("name{labels}"
// with labels sorted; a bare name sums all its series), parsed with
// Prometheus's own text parser.
func scrape(t *testing.T, url string, want map[string]float64) map[string]float64 {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(get(t, url)))
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			var labels []string
			for _, l := range mt.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			key := mf.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			var v float64
			switch {
			case mt.Gauge != nil:
				v = mt.Gauge.GetValue()
			case mt.Counter != nil:
				v = mt.Counter.GetValue()
			default:
				continue
			}
			if _, ok := want[key]; ok {
				got[key] = v
			}
			if _, ok := want[mf.GetName()]; ok {
				got[mf.GetName()] += v
			}
		}
	}
	for k := range want {
		if _, ok := got[k]; !ok && !strings.Contains(k, "{") {
			got[k] = 0 // a family without series sums to 0
		}
	}
	return got
}
