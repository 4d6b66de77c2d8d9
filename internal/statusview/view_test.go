package statusview

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wgbird/wgbird/internal/api"
	"github.com/wgbird/wgbird/internal/readme"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

var now = time.Date(2026, 11, 25, 17, 30, 0, 0, time.UTC)

// healthy is an announced service whose checks all pass.
func healthy() api.ServiceStatus {
	return api.ServiceStatus{
		Name: "vpn4", Interface: "wg0", State: "announced",
		Since: now.Add(-3*time.Minute - 12*time.Second), Reason: "3 healthy in a row", Healthy: true,
		Checks: []api.Check{
			{Name: "link", OK: true, Detail: "wg0 up, running, VIP 192.168.20.1/24 present", Took: 85 * time.Microsecond},
			{Name: "wireguard", OK: true, Detail: "listen 51820, 12 peers, newest handshake 14s ago", Took: 1934 * time.Microsecond},
			{Name: "exec:nginx", OK: true, Detail: "exit status 0", Took: 301 * time.Millisecond},
		},
		Protocols: []api.Protocol{{Name: "wg_vip4", Proto: "Static", Table: "master4", State: "up", Since: "17:26:48.120"}},
		CheckedAt: now.Add(-400 * time.Millisecond),
	}
}

// drained is a withdrawn, persistently drained service whose VIP is gone.
func drained() api.ServiceStatus {
	return api.ServiceStatus{
		Name: "vpn6", Interface: "wg1", State: "withdrawn",
		Since: now.Add(-26*time.Hour - 5*time.Minute), Reason: "drained: kernel upgrade", Healthy: false,
		Checks: []api.Check{
			{Name: "link", OK: false, Hard: true, Detail: "VIP 192.168.20.1/24 missing on wg1", Took: 120 * time.Microsecond},
		},
		Protocols: []api.Protocol{
			{Name: "wg_vip6", Proto: "Static", Table: "master6", State: "down", Since: "2026-11-24 15:25:00"},
		},
		Drain:     &api.Drain{Reason: "kernel upgrade", Since: now.Add(-26*time.Hour - 5*time.Minute), Persist: true},
		CheckedAt: now.Add(-time.Second),
	}
}

// noBIRD is a service whose BIRD does not answer.
func noBIRD() api.ServiceStatus {
	return api.ServiceStatus{
		Name: "vpn4", Interface: "wg0", State: "unknown", Since: now.Add(-5 * time.Second),
		Healthy: true,
		Checks: []api.Check{
			{Name: "link", OK: true, Detail: "wg0 up, running, VIP 192.168.20.1/24 present", Took: 90 * time.Microsecond},
			{Name: "wireguard", OK: false, Detail: "wireguard-go not answering within 250ms", Took: 250 * time.Millisecond},
		},
		BIRDError: "reading protocols: dial unix /run/bird/bird.ctl: connect: no such file or directory",
		CheckedAt: now.Add(-200 * time.Millisecond),
		Drain:     &api.Drain{Reason: "started with --drain", Since: now.Add(-5 * time.Second)},
	}
}

func TestTable(t *testing.T) {
	tests := []struct {
		name string
		view View
	}{
		{"healthy", View{
			Version: "v1.2.3", Now: now,
			BIRD:     &api.BIRDStatus{Socket: "/run/bird/bird.ctl", Reachable: true, Version: "2.0.12", RTT: 412 * time.Microsecond},
			Services: []api.ServiceStatus{healthy()},
		}},
		{"two_services_drained", View{
			Version: "v1.2.3", Now: now,
			Services: []api.ServiceStatus{healthy(), drained()},
		}},
		{"bird_unreachable", View{
			Version: "v1.2.3", Now: now,
			BIRD:     &api.BIRDStatus{Socket: "/run/bird/bird.ctl", Error: "dial unix /run/bird/bird.ctl: connect: no such file or directory"},
			Services: []api.ServiceStatus{noBIRD()},
		}},
		{"bird_errors_without_bird_info", View{
			Now:      now,
			Services: []api.ServiceStatus{noBIRD(), healthy()},
		}},
		{"check_warnings", View{
			Version: "v1.2.3", Now: now,
			BIRD:     &api.BIRDStatus{Socket: "/run/bird/bird.ctl", Reachable: true, Version: "2.0.12", RTT: 2300 * time.Microsecond},
			Services: []api.ServiceStatus{healthy()},
			Warnings: []string{
				"service vpn4: protocol wg_vip4 (/etc/bird/bird.conf:12) is not `disabled` in BIRD's config: when BIRD starts or reloads its config it announces before wgbird has checked anything; add `disabled;` to it (wgbird enables it once healthy)",
				"service vpn4 controls BGP protocol bgp_router: every return then waits for a new BGP session (~4-7 s measured) and every withdrawal tears the session down; control a static protocol whose routes bgp_router exports instead",
				"an explicit\nline break is kept",
			},
			Notes: []string{"whether wg_vip4's routes pass the export filter of bgp_router: BIRD evaluates export filters only on channels that are up"},
		}},
		{"not_checked_yet", View{
			Now:      now,
			Services: []api.ServiceStatus{{Name: "vpn4", Interface: "wg0", State: "unknown", Since: now}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Render(&b, tt.view); err != nil {
				t.Fatal(err)
			}
			golden(t, "table_"+tt.name+".golden", b.Bytes())
		})
	}
}

// TestJSON pins the JSON schema of `wgbird status --json` (the control
// API's GET /v1/status) and so SCHEMA.md: a change of this golden file is
// a change of a documented interface.
func TestJSON(t *testing.T) {
	bs := api.BIRDStatus{Socket: "/run/bird/bird.ctl", Reachable: true, Version: "2.0.12", RTT: 412 * time.Microsecond,
		Error: "", CheckedAt: time.Date(2026, 11, 25, 17, 29, 59, 600e6, time.UTC)}
	st := api.StatusReply{Version: "v1.2.3", BIRD: &bs, Services: []api.ServiceStatus{healthy(), drained(), noBIRD()}}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(st); err != nil {
		t.Fatal(err)
	}
	golden(t, "status.json.golden", b.Bytes())

	// And it reads back into the same value: clients may rely on the
	// types.
	var back api.StatusReply
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(st, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

func TestAge(t *testing.T) {
	tests := map[time.Duration]string{
		0:                                     "0s",
		10 * time.Second:                      "10s",
		59*time.Second + 900*time.Millisecond: "59s",
		3 * time.Minute:                       "3m",
		3*time.Minute + 12*time.Second:        "3m12s",
		5*time.Hour + 3*time.Minute:           "5h3m",
		50 * time.Hour:                        "2d2h",
	}
	for d, want := range tests {
		if got := age(d); got != want {
			t.Errorf("age(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestSchemaDocumented keeps README's schema section in step with the
// JSON: every key of the golden status is documented in a table.
func TestSchemaDocumented(t *testing.T) {
	doc := readmeSection(t, "### `wgbird status --json`")
	b, err := os.ReadFile(filepath.Join("testdata", "status.json.golden"))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				keys[k] = true
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
	for k := range keys {
		if !bytes.Contains(doc, []byte("| `"+k+"` |")) {
			t.Errorf("README's status --json section has no table row for key %q", k)
		}
	}
}

func readmeSection(t *testing.T, heading string) []byte {
	t.Helper()
	s, err := readme.Section(heading)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(s)
}
