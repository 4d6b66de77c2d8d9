package labjudge

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseEndpoints(t *testing.T) {
	got, err := ParseEndpoints("AAA=\t198.18.0.1:51820\nBBB=\t(none)\nCCC=\t[fd00::1]:51820\n")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]netip.AddrPort{
		"AAA=": netip.MustParseAddrPort("198.18.0.1:51820"),
		"BBB=": {},
		"CCC=": netip.MustParseAddrPort("[fd00::1]:51820"),
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("ParseEndpoints (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"AAA=", "AAA=\tnot-an-endpoint", "A B C"} {
		if _, err := ParseEndpoints(bad); err == nil {
			t.Errorf("ParseEndpoints(%q): no error", bad)
		}
	}
}

func TestParseHandshakes(t *testing.T) {
	out := "AAA=\t1732556000\nBBB=\t0\n"
	got, err := ParseHandshakes(out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{"AAA=": time.Unix(1732556000, 0), "BBB=": {}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseHandshakes (-want +got):\n%s", diff)
	}
	if _, err := ParseHandshakes("AAA= x y"); err == nil {
		t.Error("ParseHandshakes accepted a malformed line")
	}
}
