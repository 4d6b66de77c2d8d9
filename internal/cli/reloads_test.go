package cli

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
)

// A BIRD that does not answer is an error for the reload watcher, which
// then tries again, not a guess at a default config file: the BIRD still
// starting may name another one with -c.
func TestLocateBIRDConfigNotAnswering(t *testing.T) {
	locate := locateBIRDConfig(filepath.Join(t.TempDir(), "bird.ctl"), slog.New(slog.DiscardHandler))
	if got, err := locate(context.Background()); err == nil {
		t.Errorf("locate with no BIRD = %q, want an error", got)
	}
}
