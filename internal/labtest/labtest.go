package labtest

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var (
	// prereqErr says why the lab cannot run here (not root, a binary
	// missing); "" when it can.
	prereqErr string
	// wgbirdBin is the wgbird Main built (or was given); wgbirdErr why not.
	wgbirdBin string
	wgbirdErr error
)

// CI reports whether the tests run under CI=true, where a missing
// prerequisite fails instead of skipping.
func CI() bool { return os.Getenv("CI") == "true" }

// Main is a lab-based package's TestMain, for os.Exit(labtest.Main(...)):
// it checks that the lab can run here (root, none of missing), builds
// wgbird from this module (or takes WGBIRD_TEST_WGBIRD: a wgbird built
// beforehand, as make kernel-test's guest has no Go), runs the tests and
// then teardown (if not nil), whose error fails the run. Under CI=true a
// missing prerequisite or a failed build fails the run at once; what
// names the tests in that message ("lab integration tests").
func Main(m *testing.M, what string, missing []string, teardown func() error) int {
	if os.Geteuid() != 0 {
		prereqErr = "the lab needs root"
	} else if len(missing) > 0 {
		prereqErr = "missing " + strings.Join(missing, ", ")
	}
	if prereqErr != "" {
		if CI() {
			fmt.Fprintf(os.Stderr, "FAIL: %s under CI=true: %s\n", what, prereqErr)
			return 1
		}
		return m.Run()
	}
	tmp, err := os.MkdirTemp("", "wgbird-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if p := os.Getenv("WGBIRD_TEST_WGBIRD"); p != "" {
		wgbirdBin = p
	} else {
		wgbirdBin, wgbirdErr = buildWgbird(filepath.Join(tmp, "wgbird"))
	}
	if wgbirdErr != nil && CI() {
		fmt.Fprintf(os.Stderr, "FAIL: building wgbird: %v\n", wgbirdErr)
		return 1
	}
	code := m.Run()
	if teardown != nil {
		if err := teardown(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	return code
}

// RequireLab skips the test (fails it under CI=true) when the lab cannot
// run here.
func RequireLab(tb testing.TB) {
	tb.Helper()
	if prereqErr == "" {
		return
	}
	if CI() {
		tb.Fatal(prereqErr)
	}
	tb.Skip(prereqErr)
}

// Wgbird is RequireLab plus the wgbird Main built: it returns its path,
// or skips the test (fails it under CI=true) without one.
func Wgbird(tb testing.TB) string {
	tb.Helper()
	RequireLab(tb)
	if wgbirdErr != nil {
		if CI() {
			tb.Fatal(wgbirdErr)
		}
		tb.Skipf("no wgbird: %v", wgbirdErr)
	}
	return wgbirdBin
}

// Logger is the labs' logger in tests: warnings and errors, to stderr.
func Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// buildWgbird builds ./cmd/wgbird of the module this test binary runs in
// into out and returns out.
func buildWgbird(out string) (string, error) {
	// go test puts its own GOROOT/bin first in the test's PATH.
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("finding go: %w", err)
	}
	root, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("finding the module root: %w", err)
	}
	cmd := exec.Command(goBin, "build", "-o", out, "./cmd/wgbird")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/wgbird: %w: %s", err, b)
	}
	return out, nil
}
