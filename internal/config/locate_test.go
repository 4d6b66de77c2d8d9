package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestErrorAt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wgbird.toml")
	data := `[control]
group = "wgbird"

[[service]]
interface = "wg0"
vips = ["192.168.20.1/24"]
protocols = ["wg_vip4",
  "wg_vip44"]

[[service]]
interface = "wg1"
vips = ["192.168.21.1/24"]
protocols = ["wg_vip6"]
`
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"control.group":           path + `:2: control.group: "wgbird": no such group`,
		"service[1].protocols[2]": path + `:8: service[1].protocols[2]: "wgbird": no such group`,
		"service[2].protocols[1]": path + `:13: service[2].protocols[1]: "wgbird": no such group`,
	} {
		if got := ErrorAt(path, key, `"wgbird": no such group`).Error(); got != want {
			t.Errorf("ErrorAt(%q) = %q, want %q", key, got, want)
		}
	}
	if got, want := ErrorAt(filepath.Join(t.TempDir(), "gone.toml"), "control.group", "x").Error(), "gone.toml: control.group: x"; filepath.Base(got) != want {
		t.Errorf("unreadable file: %q, want .../%s", got, want)
	}
}
