package birdlint

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExportQueries(t *testing.T) {
	up := capturedDetails(t, "protocols_all_up.txt")
	svcs := []Service{{Name: "vpn", Protocols: []string{"wg_vip4", "other_static", "up_peer"}}}
	want := []ExportQuery{
		{Table: "master4", BGP: "up_peer", Protocol: "wg_vip4"},
		{Table: "master4", BGP: "up_peer", Protocol: "other_static"},
	}
	got := ExportQueries(svcs, up)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if c := got[0].Command(); c != "show route table master4 export up_peer protocol wg_vip4 count" {
		t.Errorf("command %q", c)
	}
	// Disabled: no routes, nothing BIRD can evaluate.
	if got := ExportQueries(svcs[:1], capturedDetails(t, "protocols_all_disabled.txt")); len(got) != 1 {
		t.Errorf("disabled wg_vip4: queries %v, want only other_static's", got)
	}
}

func TestLint(t *testing.T) {
	read, glob := testdataFS(t)
	confA, err := ReadConf("/bird_a.conf", read, glob)
	if err != nil {
		t.Fatal(err)
	}
	confC, err := ReadConf("/bird_c.conf", read, glob)
	if err != nil {
		t.Fatal(err)
	}
	noProtocols := &Conf{Files: []string{"/bird_c.conf"}}
	up := capturedDetails(t, "protocols_all_up.txt")
	disabled := capturedDetails(t, "protocols_all_disabled.txt")
	tables := capturedDetails(t, "protocols_all_tables.txt")
	vpn := func(ps ...string) []Service { return []Service{{Name: "vpn", Protocols: ps}} }
	q := func(p string) ExportQuery { return ExportQuery{Table: "master4", BGP: "up_peer", Protocol: p} }

	tests := []struct {
		name string
		in   Input
		want Report
	}{
		{
			name: "good: disabled at boot, exported by an established BGP",
			in:   Input{Services: vpn("wg_vip4"), Protocols: up, Conf: confA, Exports: map[ExportQuery]int{q("wg_vip4"): 1}},
		},
		{
			name: "static enabled at boot whose routes the BGP filter rejects",
			in:   Input{Services: vpn("other_static"), Protocols: up, Conf: confA, Exports: map[ExportQuery]int{q("other_static"): 0}},
			want: Report{Warnings: []string{
				"service vpn: protocol other_static (/bird_a.conf:9) is not `disabled` in BIRD's config: when BIRD starts or reloads its config it announces before wgbird has checked anything; add `disabled;` to it (wgbird enables it once healthy)",
				"service vpn: no BGP protocol exports other_static's routes from table master4: up_peer (filter only_vip); enabling and disabling it moves no traffic",
			}},
		},
		{
			name: "BGP controlled instead of the static",
			in:   Input{Services: vpn("up_peer"), Protocols: up, Conf: confA},
			want: Report{Warnings: []string{
				"service vpn controls BGP protocol up_peer: every return then waits for a new BGP session (~4-7 s measured) and every withdrawal tears the session down; control a static protocol whose routes up_peer exports instead",
				"service vpn: protocol up_peer (/bird_a.conf:17) is not `disabled` in BIRD's config: when BIRD starts or reloads its config it announces before wgbird has checked anything; add `disabled;` to it (wgbird enables it once healthy)",
			}},
		},
		{
			name: "withdrawn now: BIRD cannot evaluate the filter",
			in:   Input{Services: vpn("wg_vip4"), Protocols: disabled, Conf: confA},
			want: Report{Notes: []string{
				"whether BGP's export filters pass wg_vip4's routes: it has no routes in table master4 now (disabled), so BIRD cannot say",
			}},
		},
		{
			name: "export query failed",
			in:   Input{Services: vpn("wg_vip4"), Protocols: up, Conf: confA},
			want: Report{Notes: []string{
				"whether wg_vip4's routes pass the export filter of up_peer: BIRD evaluates export filters only on channels that are up",
			}},
		},
		{
			name: "unknown protocol; config unreadable",
			in:   Input{Services: vpn("nosuch"), Protocols: up, ConfErr: errors.New("connecting to BIRD to find its config: permission denied")},
			want: Report{
				Errors: []string{`service vpn: BIRD has no protocol "nosuch" (check the protocols key and bird.conf)`},
				Notes:  []string{"whether the controlled protocols are disabled at BIRD's start: connecting to BIRD to find its config: permission denied (give BIRD's config with --bird-config)"},
			},
		},
		{
			name: "no BGP on the table; ACCEPT exports all",
			in:   Input{Services: vpn("wg_vip6", "wg_vip4"), Protocols: tables, Conf: confC},
			want: Report{Warnings: []string{
				"service vpn: protocol wg_vip6 (/bird_c.conf:4) is not `disabled` in BIRD's config: when BIRD starts or reloads its config it announces before wgbird has checked anything; add `disabled;` to it (wgbird enables it once healthy)",
				"service vpn: no BGP protocol has a channel on table t6, so wg_vip6's routes reach no BGP neighbour: enabling and disabling it moves no traffic",
				"service vpn: protocol wg_vip4 (/bird_c.conf:8) is not `disabled` in BIRD's config: when BIRD starts or reloads its config it announces before wgbird has checked anything; add `disabled;` to it (wgbird enables it once healthy)",
			}},
		},
		{
			name: "every BGP on the table exports none",
			in:   Input{Services: vpn("wg_vip4"), Protocols: withoutProtocol(up, "up_peer")},
			want: Report{Warnings: []string{
				"service vpn: every BGP protocol on table master4 (down_peer) has `export none`, so wg_vip4's routes reach no BGP neighbour",
			}},
		},
		{
			name: "protocol up without routes",
			in:   Input{Services: vpn("wg_vip4"), Protocols: withRoutes(up, "wg_vip4", 0)},
			want: Report{Warnings: []string{
				"service vpn: protocol wg_vip4 is up but has no routes in table master4: enabling it announces nothing",
			}},
		},
		{
			name: "protocol missing from bird.conf",
			in:   Input{Services: vpn("wg_vip4"), Protocols: up, Conf: noProtocols, Exports: map[ExportQuery]int{q("wg_vip4"): 1}},
			want: Report{Notes: []string{"whether wg_vip4 is disabled at BIRD's start: no `protocol ... wg_vip4` block found in /bird_c.conf"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Lint(tt.in)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func withoutProtocol(ds []Detail, name string) []Detail {
	var out []Detail
	for _, d := range ds {
		if d.Name != name {
			out = append(out, d)
		}
	}
	return out
}

func withRoutes(ds []Detail, name string, n int) []Detail {
	out := make([]Detail, len(ds))
	copy(out, ds)
	for i := range out {
		if out[i].Name == name {
			chs := append([]Channel(nil), out[i].Channels...)
			for j := range chs {
				chs[j].Imported, chs[j].Preferred = n, n
			}
			out[i].Channels = chs
		}
	}
	return out
}
