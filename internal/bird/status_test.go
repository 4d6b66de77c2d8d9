package bird

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseStatus(t *testing.T) {
	r, err := ParseReply([]byte(capShowStatus))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseStatus(r)
	if err != nil {
		t.Fatalf("ParseStatus: %v", err)
	}
	want := Status{Version: "2.0.12", LastReboot: "2026-11-25 17:28:23.462", LastReconfig: "2026-11-25 17:28:23.462"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseStatus (-want +got):\n%s", diff)
	}
	if g := got.Generation(); g != "2026-11-25 17:28:23.462 / 2026-11-25 17:28:23.462" {
		t.Errorf("Generation = %q", g)
	}

	r, err = ParseReply([]byte("0013 Daemon is up and running\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseStatus(r); err == nil {
		t.Error("ParseStatus without a version line: no error")
	}
}
