package labplot

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNotInTheDaemon: the plotting library stays out of wgbird's own
// dependency graph (only cmd/wgbird-lab draws).
func TestNotInTheDaemon(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(goBin, "list", "-deps", "github.com/wgbird/wgbird/cmd/wgbird").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v: %s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "gonum.org/") || strings.Contains(pkg, "/labplot") || strings.Contains(pkg, "/labbench") {
			t.Errorf("cmd/wgbird depends on %s", pkg)
		}
	}
}
