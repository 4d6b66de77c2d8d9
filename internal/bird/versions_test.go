package bird

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// captured reads testdata/replies/VERSION/NAME.txt, a reply captured from
// that BIRD by testdata/replies/capture.sh.
func captured(t *testing.T, version, name string) Reply {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/replies", version, name+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseReply(b)
	if err != nil {
		t.Fatalf("%s/%s: %v", version, name, err)
	}
	return r
}

// capturedVersions lists the BIRD versions with captured replies.
func capturedVersions(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("testdata/replies")
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for _, e := range ents {
		if e.IsDir() {
			vs = append(vs, e.Name())
		}
	}
	if len(vs) < 3 {
		t.Fatalf("replies captured from %v, want 2.0.12, 2.19.2 and 3.3.2 at least", vs)
	}
	return vs
}

// TestCapturedVersions reads every captured reply of every BIRD version the
// same way: the same protocols and states from `show protocols` and `show
// protocols all` (whose detail blocks differ between 2.x and 3.x), success
// for enable, disable and both answers to configure, errors with BIRD's
// code for unknown protocols, and the version from `show status`.
func TestCapturedVersions(t *testing.T) {
	want := []Protocol{
		{Name: "device1", Proto: "Device", Table: "---", State: "up"},
		{Name: "wg_vip4", Proto: "Static", Table: "master4", State: "down"},
		{Name: "wg_up", Proto: "Static", Table: "master4", State: "up"},
		{Name: "a_very_long_protocol_name_here", Proto: "Static", Table: "master4", State: "up"},
		{Name: "bgp_router", Proto: "BGP", Table: "---", State: "start", Info: "Passive"},
	}
	// show protocols all runs after `enable "wg_vip4"`.
	wantAll := append([]Protocol(nil), want...)
	wantAll[1].State = "up"
	ignoreSince := func(ps []Protocol) []Protocol {
		for i := range ps {
			if ps[i].Since == "" {
				t.Errorf("%s: no Since", ps[i].Name)
			}
			ps[i].Since = ""
		}
		return ps
	}
	for _, v := range capturedVersions(t) {
		t.Run(v, func(t *testing.T) {
			g, err := os.ReadFile(filepath.Join("testdata/replies", v, "greeting.txt"))
			if err != nil {
				t.Fatal(err)
			}
			if err := checkGreeting(g); err != nil {
				t.Errorf("greeting: %v", err)
			}
			for name, want := range map[string][]Protocol{"show-protocols": want, "show-protocols-all": wantAll} {
				ps, err := ParseProtocols(captured(t, v, name))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if diff := cmp.Diff(want, ignoreSince(ps)); diff != "" {
					t.Errorf("%s (-want +got):\n%s", name, diff)
				}
			}
			ps, err := ParseProtocols(captured(t, v, "show-protocols-right-after-disable"))
			if err != nil || len(ps) != 1 || ps[0].State != "flush" || ps[0].Enabled() {
				t.Errorf("right after disable: %+v, %v; want wg_up in flush, not enabled", ps, err)
			}
			for _, name := range []string{"enable", "enable-again", "disable", "disable-again", "configure", "configure-changed"} {
				if r := captured(t, v, name); r.Err() != nil || ClassOf(r.Code) != ClassOK {
					t.Errorf("%s: %04d, Err %v; want success", name, r.Code, r.Err())
				}
			}
			if r := captured(t, v, "configure-changed"); r.Code != 4 {
				t.Errorf("configure of a changed BGP protocol: %04d, want 0004 Reconfiguration in progress", r.Code)
			}
			for name, code := range map[string]int{"enable-nosuch": 8003, "enable-unquoted-nosuch": 9001, "show-protocols-nosuch": 8003} {
				err := captured(t, v, name).Err()
				if re, ok := err.(*ReplyError); !ok || re.Code != code {
					t.Errorf("%s: Err() = %v, want a *ReplyError %04d", name, err, code)
				}
			}
			r := captured(t, v, "show-status")
			if r.Lines[0].Code != 1000 || r.Lines[0].Text != "BIRD "+v {
				t.Errorf("show status: first line %+v, want 1000 BIRD %s", r.Lines[0], v)
			}
		})
	}
}

func TestClassOf(t *testing.T) {
	for code, want := range map[int]bool{
		0: false, 3: false, 4: false, 11: false, 25: false,
		1002: false, 1026: false, 1027: false, 2002: false,
		8003: true, 8009: true, 9001: true, 9003: true,
		3000: true, 5123: true, 7999: true, // classes BIRD does not define
	} {
		if got := ClassOf(code).Failed(); got != want {
			t.Errorf("ClassOf(%04d).Failed() = %v, want %v", code, got, want)
		}
	}
	r, err := ParseReply([]byte("1026-MPLS ranges\n 1 2\n8009 Failed to open file\n"))
	if err != nil {
		t.Fatal(err)
	}
	if re, ok := r.Err().(*ReplyError); !ok || re.Code != 8009 || !strings.Contains(re.Error(), "bird replied 8009: Failed to open file") {
		t.Errorf("Err() = %#v, want a *ReplyError 8009", r.Err())
	}
}
