package cli

import "testing"

func TestGodebugSets(t *testing.T) {
	for _, c := range []struct {
		godebug string
		want    bool
	}{
		{"", false},
		{"memprofilerate=1", true},
		{"gctrace=1,memprofilerate=0", true},
		{" gctrace=1, memprofilerate=4096 ", true},
		{"memprofilerate", false}, // no value: the runtime ignores it too
		{"xmemprofilerate=1", false},
		{"gctrace=1", false},
	} {
		if got := GodebugSets(c.godebug, "memprofilerate"); got != c.want {
			t.Errorf("GodebugSets(%q, memprofilerate) = %v, want %v", c.godebug, got, c.want)
		}
	}
}
