package labproc

import (
	"testing"
)

func TestBindsWireGuard(t *testing.T) {
	// From /proc/PID/mountinfo of a lab's wireguard-go (/run on the root
	// file system), and as it would read with /run a tmpfs of its own.
	rootfs := "102 88 254:0 /run/wgbb-bench/s2/wireguard /run/wireguard rw,relatime - ext4 /dev/vda rw\n"
	tmpfs := "102 88 0:25 /wgbb-bench/s2/wireguard /run/wireguard rw,relatime - tmpfs tmpfs rw\n"
	for _, tt := range []struct {
		mountinfo, dir string
		want           bool
	}{
		{rootfs, "/run/wgbb-bench/s2/wireguard", true},
		{tmpfs, "/run/wgbb-bench/s2/wireguard", true},
		{rootfs, "/run/wgbb-bench/s1/wireguard", false},
		{rootfs, "/run/wgbl-itest/s2/wireguard", false},
		{tmpfs, "/run/wgbl-itest/s2/wireguard", false},
		{"22 1 254:0 / / rw - ext4 /dev/vda rw\n", "/run/wgbl-itest/s2/wireguard", false},
	} {
		if got := bindsWireGuard(tt.mountinfo, tt.dir); got != tt.want {
			t.Errorf("bindsWireGuard(%q, %s) = %v, want %v", tt.mountinfo, tt.dir, got, tt.want)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	if got, want := unescapeMount(`/run/a\040b`), "/run/a b"; got != want {
		t.Errorf("unescapeMount = %q, want %q", got, want)
	}
}
