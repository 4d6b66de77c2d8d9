package bird

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseReply(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Reply
		err  string // substring; "" means success
		rerr *ReplyError
	}{
		{"greeting", capGreeting, Reply{Code: 1, Lines: []Line{{1, false, "BIRD 2.0.12 ready."}}}, "", nil},
		{"enable", capEnable, Reply{Code: 0, Lines: []Line{{11, true, "wg_vip4: enabled"}, {0, false, ""}}}, "", nil},
		{"enable again", capEnableAgain, Reply{Code: 0, Lines: []Line{{10, true, "wg_vip4: already enabled"}, {0, false, ""}}}, "", nil},
		{"disable", capDisable, Reply{Code: 0, Lines: []Line{{9, true, "wg_vip4: disabled"}, {0, false, ""}}}, "", nil},
		{"disable again", capDisableAgain, Reply{Code: 0, Lines: []Line{{8, true, "wg_vip4: already disabled"}, {0, false, ""}}}, "", nil},
		{"restrict", capRestrict, Reply{Code: 16, Lines: []Line{{16, false, "Access restricted"}}}, "", nil},
		{"access denied", capAccessDenied, Reply{Code: 8007, Lines: []Line{{8007, false, "Access denied"}}}, "", &ReplyError{8007, "Access denied"}},
		{"no protocols match", capShowProtocolsNoMatch, Reply{Code: 8003, Lines: []Line{{8003, false, "No protocols match"}}}, "", &ReplyError{8003, "No protocols match"}},
		{"syntax error", capEnableNosuch, Reply{Code: 9001, Lines: []Line{{9001, false, "syntax error, unexpected CF_SYM_UNDEFINED, expecting CF_SYM_KNOWN or TEXT or ALL"}}}, "",
			&ReplyError{9001, "syntax error, unexpected CF_SYM_UNDEFINED, expecting CF_SYM_KNOWN or TEXT or ALL"}},
		{"empty command", capEmptyLine, Reply{Code: 9001, Lines: []Line{{9001, false, "syntax error, unexpected END"}}}, "", &ReplyError{9001, "syntax error, unexpected END"}},
		{"show status", capShowStatus, Reply{Code: 13, Lines: []Line{
			{1000, true, "BIRD 2.0.12"},
			{1011, true, "Router ID is 10.0.0.9"},
			{0, true, "Hostname is vm"},
			{0, true, "Current server time is 2026-11-25 17:28:26.448"},
			{0, true, "Last reboot on 2026-11-25 17:28:23.462"},
			{0, true, "Last reconfiguration on 2026-11-25 17:28:23.462"},
			{13, false, "Daemon is up and running"},
		}}, "", nil},
		{"show protocols", capShowProtocols, Reply{Code: 0, Lines: []Line{
			{2002, true, "Name       Proto      Table      State  Since         Info"},
			{1002, true, "device1    Device     ---        up     17:28:23.462  "},
			{0, true, "wg_vip4    Static     master4    down   17:28:23.462  "},
			{0, true, "bgp_router BGP        ---        start  17:28:23.462  Idle          "},
			{0, false, ""},
		}}, "", nil},
		{"enable all", capEnableAll, Reply{Code: 0, Lines: []Line{
			{10, true, "device1: already enabled"},
			{11, true, "wg_vip4: enabled"},
			{10, true, "wg_up: already enabled"},
			{0, true, "a_very_long_protocol_name_here: already enabled"},
			{0, false, ""},
		}}, "", nil},
		{"configure", capConfigure, Reply{Code: 3, Lines: []Line{{2, true, "Reading configuration from bird.conf"}, {3, false, "Reconfigured"}}}, "", nil},
		{"configure restarting", capConfigureRestart, Reply{Code: 4, Lines: []Line{{2, true, "Reading configuration from bird.conf"}, {4, false, "Reconfiguration in progress"}}}, "", nil},
		{"error inside a reply", "1002-x\n8000-<line overflow>\n0000 \n", Reply{Code: 0, Lines: []Line{{1002, true, "x"}, {8000, true, "<line overflow>"}, {0, false, ""}}}, "", &ReplyError{8000, "<line overflow>"}},
		{"empty continuation", "1006-a\n \n0000 \n", Reply{Code: 0, Lines: []Line{{1006, true, "a"}, {0, true, ""}, {0, false, ""}}}, "", nil},

		{"empty", "", Reply{}, "incomplete reply: empty", nil},
		{"no newline", "0000 ", Reply{}, "incomplete reply: line 1", nil},
		{"final line cut", "0011-wg_vip4: enabled\n0000", Reply{}, "incomplete reply: line 2", nil},
		{"only continued", "0011-wg_vip4: enabled\n", Reply{}, "incomplete reply", nil},
		{"rows without end", "2002-Name\n1002-device1\n x\n", Reply{}, "incomplete reply", nil},
		{"code cut", "000", Reply{}, "incomplete reply", nil},
		{"trailing reply", capEnable + capEnable, Reply{}, "bytes after the final line", nil},
		{"trailing async", capDisableEcho, Reply{}, "bytes after the final line", nil},
		{"async line", "+Disabling protocol wg_up\n", Reply{}, "malformed reply: line 1", nil},
		{"leading continuation", " wg_vip4\n0000 \n", Reply{}, "continues no code", nil},
		{"no separator", "0000\n", Reply{}, "malformed reply: line 1", nil},
		{"continued 0000", "0000-x\n0000 \n", Reply{}, "code 0000 cannot continue", nil},
		{"bad separator", "0000:x\n", Reply{}, "malformed reply", nil},
		{"letters", "OK 1\n", Reply{}, "malformed reply", nil},
		{"empty line", "\n", Reply{}, "malformed reply", nil},
		{"empty line inside", "1002-a\n\n0000 \n", Reply{}, "malformed reply: line 2", nil},
		{"crlf", "0000 \r\n", Reply{Code: 0, Lines: []Line{{0, false, "\r"}}}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseReply([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseReply(%q) error = %v, want one containing %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseReply(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseReply(%q) (-want +got):\n%s", tt.in, diff)
			}
			var gotErr *ReplyError
			if e := got.Err(); e != nil && !errors.As(e, &gotErr) {
				t.Fatalf("Err() = %T %v, want *ReplyError", e, e)
			}
			if diff := cmp.Diff(tt.rerr, gotErr); diff != "" {
				t.Errorf("Err() (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseReplySplit feeds every prefix of every captured reply: a prefix
// is never mistaken for a complete reply.
func TestParseReplySplit(t *testing.T) {
	for _, in := range capturedReplies {
		for i := 0; i < len(in); i++ {
			if r, err := ParseReply([]byte(in[:i])); err == nil {
				t.Errorf("ParseReply(%q) = %+v, want an error for the first %d of %d bytes", in[:i], r, i, len(in))
			}
		}
		if _, err := ParseReply([]byte(in)); err != nil {
			t.Errorf("ParseReply(%q): %v", in, err)
		}
	}
}

var capturedReplies = []string{
	capGreeting, capShowProtocols, capShowProtocolsLongName, capShowProtocolsISOLong,
	capShowProtocolsUnix, capShowProtocolsCustom, capShowProtocolsAll, capShowProtocolsNoMatch,
	capEnable, capEnableAgain, capDisable, capDisableAgain, capEnableNosuch, capEnableQuotedNo,
	capRestrict, capAccessDenied, capEmptyLine, capEnableAll, capShowStatus, capConfigureRestart,
	capConfigure,
}

func TestReplyErrorMessage(t *testing.T) {
	r, err := ParseReply([]byte(capAccessDenied))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Err().Error(), "bird replied 8007: Access denied"; got != want {
		t.Errorf("Err() = %q, want %q", got, want)
	}
}

func TestParseProtocols(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Protocol
		err  string
	}{
		{"show protocols", capShowProtocols, []Protocol{
			{"device1", "Device", "---", "up", "17:28:23.462", ""},
			{"wg_vip4", "Static", "master4", "down", "17:28:23.462", ""},
			{"bgp_router", "BGP", "---", "start", "17:28:23.462", "Idle"},
		}, ""},
		{"long name", capShowProtocolsLongName, []Protocol{
			{"device1", "Device", "---", "up", "17:37:48.613", ""},
			{"wg_vip4", "Static", "master4", "down", "17:37:48.613", ""},
			{"wg_up", "Static", "master4", "up", "17:37:48.613", ""},
			{"a_very_long_protocol_name_here", "Static", "master4", "up", "17:37:48.613", ""},
		}, ""},
		{"iso long", capShowProtocolsISOLong, []Protocol{
			{"device1", "Device", "---", "up", "2026-11-25 17:38:47", ""},
			{"wg_vip4", "Static", "master4", "down", "2026-11-25 17:38:47", ""},
			{"wg_up", "Static", "master4", "up", "2026-11-25 17:38:47", ""},
			{"a_very_long_protocol_name_here", "Static", "master4", "up", "2026-11-25 17:38:47", ""},
		}, ""},
		{"unix time", capShowProtocolsUnix, []Protocol{
			{"device1", "Device", "---", "up", "1795628336", ""},
			{"wg_vip4", "Static", "master4", "down", "1795628336", ""},
		}, ""},
		{"double space in since", capShowProtocolsCustom, []Protocol{
			{"device1", "Device", "---", "up", "25 Nov  17:38", ""},
			{"wg_vip4", "Static", "master4", "down", "25 Nov  17:38", ""},
		}, ""},
		{"all", capShowProtocolsAll, []Protocol{
			{"wg_vip4", "Static", "master4", "down", "17:38:26.268", ""},
		}, ""},
		{"iso long with info", "2002-Name       Proto      Table      State  Since         Info\n" +
			"1002-bgp1       BGP        ---        start  2018-12-21 12:35:11  Active        Socket: Connection refused\n" +
			" bgp2       BGP        ---        up     2018-12-21 12:35:11  Established   \n" +
			"0000 \n", []Protocol{
			{"bgp1", "BGP", "---", "start", "2018-12-21 12:35:11", "Active        Socket: Connection refused"},
			{"bgp2", "BGP", "---", "up", "2018-12-21 12:35:11", "Established"},
		}, ""},
		// The layout of bird_socket's own tests: narrower than BIRD's.
		{"other layout", "2002-name     proto    table    state  since       info\n" +
			"1002-device1  Device   master   up     2018-12-21 12:35:11\n" +
			" SAR2     BGP      master   down   2018-12-21 12:35:11  Error: Invalid next hop\n" +
			" x  P  t  up  12:00:00  Info text\n" +
			"0000 \n", []Protocol{
			{"device1", "Device", "master", "up", "2018-12-21 12:35:11", ""},
			{"SAR2", "BGP", "master", "down", "2018-12-21 12:35:11", "Error: Invalid next hop"},
			{"x", "P", "t", "up", "12:00:00", "Info text"},
		}, ""},
		{"no protocols", "2002-Name       Proto      Table      State  Since         Info\n0000 \n", []Protocol{}, ""},
		{"no match", capShowProtocolsNoMatch, nil, "bird replied 8003: No protocols match"},
		{"access denied", capAccessDenied, nil, "bird replied 8007: Access denied"},
		{"not show protocols", capShowStatus, nil, "no header"},
		{"row before header", "1002-device1    Device     ---        up     17:28:23.462  \n0000 \n", nil, "row before the header"},
		{"two headers", "2002-Name\n2002-Name\n0000 \n", nil, "unexpected header"},
		{"bad header", "2002-Foo\n0000 \n", nil, "unexpected header"},
		{"short row", "2002-Name\n1002-device1 Device --- up\n0000 \n", nil, "line 2: row \"device1 Device --- up\" has fewer than 5 columns"},
		{"short row spaces", "2002-Name\n1002-device1 Device --- up       \n0000 \n", nil, "fewer than 5 columns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseReply([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseReply: %v", err)
			}
			got, err := ParseProtocols(r)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseProtocols error = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseProtocols: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseProtocols (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProtocolEnabled(t *testing.T) {
	for state, want := range map[string]bool{"up": true, "start": true, "stop": false, "flush": false, "down": false, "???": false} {
		if got := (Protocol{State: state}).Enabled(); got != want {
			t.Errorf("Protocol{State: %q}.Enabled() = %v, want %v", state, got, want)
		}
	}
}

func TestValidSymbol(t *testing.T) {
	tests := map[string]bool{
		"wg_vip4":               true,
		"_x":                    true,
		"A9":                    true,
		strings.Repeat("a", 64): true,
		strings.Repeat("a", 65): false,
		"":                      false,
		"9wg":                   false,
		"wg-vip4":               false,
		"wg vip4":               false,
		"wg_vip4\n":             false,
		`wg"`:                   false,
		"wg*":                   false,
		"wg?":                   false,
		"wg_vip4; disable all":  false,
		"wg_vïp":                false,
	}
	for name, want := range tests {
		if got := ValidSymbol(name); got != want {
			t.Errorf("ValidSymbol(%q) = %v, want %v", name, got, want)
		}
	}
}

func BenchmarkParseProtocols(b *testing.B) {
	// A reply with 1000 protocols.
	var sb strings.Builder
	sb.WriteString("2002-Name       Proto      Table      State  Since         Info\n")
	for i := range 1000 {
		if i == 0 {
			sb.WriteString("1002-")
		} else {
			sb.WriteString(" ")
		}
		fmt.Fprintf(&sb, "%-10s %-10s %-10s %-5s  %-12s  %s\n", fmt.Sprintf("wg_vip%d", i), "Static", "master4", "up", "17:28:23.462", "")
	}
	sb.WriteString("0000 \n")
	in := []byte(sb.String())
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := ParseReply(in)
		if err != nil {
			b.Fatal(err)
		}
		ps, err := ParseProtocols(r)
		if err != nil || len(ps) != 1000 {
			b.Fatal(len(ps), err)
		}
	}
}
