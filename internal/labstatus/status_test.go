package labstatus

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWgbirdSummary(t *testing.T) {
	// Trimmed from wgbird status --json.
	raw := []byte(`{"version":"dev","services":[{"name":"wg0","interface":"wg0","state":"withdrawn",
		"reason":"drained: lab","healthy":true,"checks":[],"drain":{"reason":"lab"}}]}`)
	want := []string{"wg0: withdrawn (drained: lab), healthy"}
	if diff := cmp.Diff(want, wgbirdSummary(raw)); diff != "" {
		t.Errorf("wgbirdSummary (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"not json"}, wgbirdSummary([]byte("not json"))); diff != "" {
		t.Errorf("wgbirdSummary of garbage (-want +got):\n%s", diff)
	}
}
