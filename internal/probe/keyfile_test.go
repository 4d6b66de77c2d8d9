package probe

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGenerateKey(t *testing.T) {
	dir := tempDir(t)
	path := filepath.Join(dir, "probe.key")
	stanza, err := GenerateKey(path, false)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(os.FileMode(0o600), st.Mode().Perm()); diff != "" {
		t.Errorf("key file mode (-want +got):\n%s", diff)
	}
	k, err := LoadPrivateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "# wgbird health probe: answers handshakes only, no AllowedIPs needed.\n[Peer]\nPublicKey = " + k.PublicKey().String() + "\n"
	if diff := cmp.Diff(want, stanza); diff != "" {
		t.Errorf("stanza (-want +got):\n%s", diff)
	}

	// Refuses to overwrite without force, and leaves the key alone.
	_, err = GenerateKey(path, false)
	if diff := cmp.Diff("writing probe key: "+path+" exists (use force to replace it)", errString(err)); diff != "" {
		t.Errorf("second GenerateKey (-want +got):\n%s", diff)
	}
	if k2, _ := LoadPrivateKey(path); k2 != k {
		t.Errorf("key changed after a refused overwrite")
	}

	// Force replaces it with a new key, still 0600 even if loosened.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	stanza2, err := GenerateKey(path, true)
	if err != nil {
		t.Fatal(err)
	}
	k3, err := LoadPrivateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if k3 == k || !strings.Contains(stanza2, k3.PublicKey().String()) {
		t.Errorf("forced GenerateKey did not write a new key matching its stanza")
	}

	// No temporary files left behind.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"probe.key"}, names); diff != "" {
		t.Errorf("directory (-want +got):\n%s", diff)
	}
}

func TestGenerateKeyErrors(t *testing.T) {
	_, err := GenerateKey(filepath.Join(tempDir(t), "missing", "probe.key"), false)
	if err == nil || !strings.HasPrefix(err.Error(), "writing probe key: ") {
		t.Errorf("GenerateKey into a missing directory = %v, want a writing probe key error", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
