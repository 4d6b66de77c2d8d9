package cli

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/daemon"
	"github.com/wgbird/wgbird/internal/fakes"
	"github.com/wgbird/wgbird/internal/health"
)

func TestStartObserversNone(t *testing.T) {
	b := fakes.NewBIRD()
	got, obs, stop, err := startObservers(&config.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)), b)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if obs != nil || got != daemon.BIRD(b) {
		t.Errorf("without [metrics] and [hook]: observer %v, BIRD %T; want nil and the BIRD itself", obs, got)
	}
}

func TestStartObservers(t *testing.T) {
	// Find a free port for [metrics] listen.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	mark := filepath.Join(t.TempDir(), "hook-ran")

	cfg := &config.Config{}
	cfg.Metrics.Listen = addr
	cfg.Hook = config.Hook{Command: []string{"sh", "-c", `echo "$WGBIRD_SERVICE $WGBIRD_TO" > "$0"`, mark}, Timeout: 10 * time.Second}
	b, obs, stop, err := startObservers(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), fakes.NewBIRD(fakes.Static("wg_vip4", true)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Protocols(context.Background()); err != nil {
		t.Fatal(err)
	}
	obs.Evaluated(health.Evaluation{Service: "wg0", State: health.Announced, Result: health.Result{Checks: []health.Check{{Name: "link", OK: true}}}})
	obs.Transitioned("wg0", health.Transition{From: health.Announced, To: health.Withdrawn, Cause: health.CauseHardFailure, Detail: "x"})

	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, s := range []string{
		`wgbird_service_announced{service="wg0"} 1`,
		`wgbird_bird_command_duration_seconds_count{command="show_protocols"} 1`,
		`wgbird_service_transitions_total{reason="hard_failure",service="wg0",to="withdrawn"} 1`,
	} {
		if !strings.Contains(string(body), s) {
			t.Errorf("metrics lack %s", s)
		}
	}

	stop() // waits for the queued hook
	got, err := os.ReadFile(mark)
	if err != nil || string(got) != "wg0 withdrawn\n" {
		t.Errorf("hook: %q, %v", got, err)
	}
	if _, err := c.Get("http://" + addr + "/metrics"); err == nil {
		t.Error("metrics still served after stop")
	}
}
