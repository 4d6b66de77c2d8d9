package systemd

import "testing"

func TestUnitOf(t *testing.T) {
	for in, want := range map[string]string{
		"0::/system.slice/wgbird.service\n":                                  "wgbird.service",
		"0::/system.slice/wgbird.service/payload\n":                          "wgbird.service",
		"12:pids:/user.slice\n0::/user.slice/user-0.slice/session-1.scope\n": "",
	} {
		if got := unitOf(in); got != want {
			t.Errorf("unitOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRestartQueued(t *testing.T) {
	jobs := "1234 wgbird.service restart running\n1235 bird.service start waiting\n"
	if !restartQueued(jobs, "wgbird.service") {
		t.Error("a queued restart not seen")
	}
	if restartQueued(jobs, "bird.service") || restartQueued("", "wgbird.service") {
		t.Error("a start job or no job taken for a restart")
	}
}
