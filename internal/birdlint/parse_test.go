package birdlint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wgbird/wgbird/internal/bird"
)

// captured reads a reply captured from BIRD 2.0.12's socket.
func captured(t *testing.T, name string) bird.Reply {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	r, err := bird.ParseReply(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

func capturedDetails(t *testing.T, name string) []Detail {
	t.Helper()
	ds, err := ParseProtocolsAll(captured(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ds
}

// summary is one line per protocol and channel, to compare readably.
func summary(ds []Detail) []string {
	var out []string
	for _, d := range ds {
		l := fmt.Sprintf("%s %s %s", d.Name, d.Proto, d.State)
		for _, k := range []string{"BGP state", "Message", "Neighbor address"} {
			if v, ok := d.Attrs[k]; ok {
				l += fmt.Sprintf(" [%s=%s]", k, v)
			}
		}
		out = append(out, l)
		for _, c := range d.Channels {
			l := fmt.Sprintf("  %s %s %s in=%s out=%s", c.Name, c.State, c.Table, c.InputFilter, c.OutputFilter)
			if c.HasRoutes {
				l += fmt.Sprintf(" routes=%d/%d/%d", c.Imported, c.Exported, c.Preferred)
			}
			out = append(out, l)
		}
	}
	return out
}

func TestParseProtocolsAll(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"protocols_all_up.txt", []string{
			"device1 Device up",
			"wg_vip4 Static up",
			"  ipv4 UP master4 in=ACCEPT out=REJECT routes=1/0/1",
			"other_static Static up",
			"  ipv4 UP master4 in=ACCEPT out=REJECT routes=1/0/1",
			"up_peer BGP up [BGP state=Established] [Neighbor address=10.99.0.2]",
			"  ipv4 UP master4 in=ACCEPT out=only_vip routes=0/1/0",
			"down_peer BGP start [BGP state=Active] [Neighbor address=10.99.0.3]",
			"  ipv4 DOWN master4 in=ACCEPT out=REJECT",
		}},
		{"protocols_all_disabled.txt", []string{
			"device1 Device up",
			"wg_vip4 Static down",
			"  ipv4 DOWN master4 in=ACCEPT out=REJECT",
			"other_static Static up",
			"  ipv4 UP master4 in=ACCEPT out=REJECT routes=1/0/1",
			"up_peer BGP up [BGP state=Established] [Neighbor address=10.99.0.2]",
			"  ipv4 UP master4 in=ACCEPT out=only_vip routes=0/0/0",
			"down_peer BGP start [BGP state=Active] [Neighbor address=10.99.0.3]",
			"  ipv4 DOWN master4 in=ACCEPT out=REJECT",
		}},
		{"protocols_all_tables.txt", []string{
			"device1 Device up",
			"wg_vip6 Static up",
			"  ipv6 UP t6 in=ACCEPT out=REJECT routes=1/0/1",
			"wg_vip4 Static up",
			"  ipv4 UP master4 in=ACCEPT out=REJECT routes=1/0/1",
			"router4 BGP down [BGP state=Down] [Neighbor address=10.99.0.3]",
			"  ipv4 DOWN master4 in=REJECT out=ACCEPT",
			"router_mp BGP down [BGP state=Down] [Neighbor address=10.99.0.4]",
			"  ipv4 DOWN master4 in=REJECT out=(unnamed)",
			"  ipv6 DOWN master6 in=REJECT out=REJECT",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, summary(capturedDetails(t, tt.file))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseProtocolsAllMessage(t *testing.T) {
	// `disable NAME "text"` sets a message, shown before the channels.
	raw := "2002-Name       Proto      Table      State  Since         Info\n" +
		"1002-other_static Static     master4    down   17:49:14.456  \n" +
		"1006-  Message:        wgbird: test\n" +
		"    Channel ipv4\n" +
		"      State:          DOWN\n" +
		"      Table:          master4\n" +
		" \n" +
		"0000 \n"
	r, err := bird.ParseReply([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := ParseProtocolsAll(r)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"other_static Static down [Message=wgbird: test]", "  ipv4 DOWN master4 in= out="}
	if diff := cmp.Diff(want, summary(ds)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseProtocolsAllErrors(t *testing.T) {
	if _, err := ParseProtocolsAll(captured(t, "export_no_valid_tables.txt")); err == nil {
		t.Error("an error reply parsed")
	}
	bad := "2002-Name       Proto      Table      State  Since         Info\n" +
		"1002-wg_vip4    Static     master4    up     17:48:46.439  \n" +
		"1006-  Channel ipv4\n" +
		"     Routes:         many\n" +
		"0000 \n"
	r, err := bird.ParseReply([]byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseProtocolsAll(r); err == nil || !strings.Contains(err.Error(), "Routes") {
		t.Errorf("bad Routes line: err = %v", err)
	}
}

func TestParseRoutes(t *testing.T) {
	got, err := parseRoutes("3 imported, 2 filtered, 1 exported, 3 preferred")
	if err != nil {
		t.Fatal(err)
	}
	if got != [3]int{3, 1, 3} {
		t.Errorf("with filtered: %v", got)
	}
}

func TestParseRouteCount(t *testing.T) {
	for file, want := range map[string]int{"export_count_one.txt": 1, "export_count_zero.txt": 0} {
		got, err := ParseRouteCount(captured(t, file))
		if err != nil || got != want {
			t.Errorf("%s: %d, %v; want %d", file, got, err, want)
		}
	}
	_, err := ParseRouteCount(captured(t, "export_no_valid_tables.txt"))
	var re *bird.ReplyError
	if !errors.As(err, &re) || re.Code != 9001 {
		t.Errorf("No valid tables: err = %v, want a 9001 ReplyError", err)
	}
	r, _ := bird.ParseReply([]byte("0000 \n"))
	if _, err := ParseRouteCount(r); err == nil {
		t.Error("a reply without a count parsed")
	}
}
