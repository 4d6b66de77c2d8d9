package cli

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wgbird/wgbird/internal/birdlint"
	"github.com/wgbird/wgbird/internal/config"
	"github.com/wgbird/wgbird/internal/continuity"
	"github.com/wgbird/wgbird/internal/daemon"
	"github.com/wgbird/wgbird/internal/fakes"
	"github.com/wgbird/wgbird/internal/vipsrc"
)

func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return ExitFailure
}

// protocolsAll is `show protocols all` as BIRD 2.0.12 answered it, with
// wg_vip4 up and exported by the established BGP protocol up_peer.
func protocolsAll(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join("..", "birdlint", "testdata", "protocols_all_up.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type checkRig struct {
	// vipsrc and running stand for the VIP-sourcing inspection and a
	// wgbird answering on the control socket; nil vipsrc skips it.
	vipsrc  func(continuity.Config) (vipsrc.State, error)
	running bool
	cfg     *config.Config
	bird    *fakes.BIRD
	wg      *fakes.WireGuard
	conf    *birdlint.Conf
}

func newCheckRig(t *testing.T, protocols ...string) *checkRig {
	vip := netip.MustParsePrefix("192.168.20.1/24")
	r := &checkRig{
		cfg: &config.Config{
			BIRD: config.BIRD{Socket: "/run/bird/bird.ctl", Timeout: time.Second},
			Services: []config.Service{{
				Name: "vpn4", Interface: "wg0", VIPs: []netip.Prefix{vip}, Protocols: protocols,
				Interval: time.Second, FastInterval: time.Second, Timeout: time.Second, Rise: 3, Fall: 2, MinPeers: 1,
			}},
		},
		bird: fakes.NewBIRD(fakes.Static("wg_vip4", true), fakes.Static("other_static", true),
			fakes.Static("up_peer", true), fakes.Static("down_peer", true)),
		wg: fakes.NewWireGuard(fakes.Device(51820, 2, time.Now().Add(-5*time.Second))),
	}
	r.bird.SetReply("show protocols all", protocolsAll(t))
	r.bird.SetReply("show route table master4 export up_peer protocol wg_vip4 count", "1007-1 of 2 routes for 2 networks in table master4\n0000 \n")
	r.bird.SetReply("show route table master4 export up_peer protocol other_static count", "1007-0 of 2 routes for 2 networks in table master4\n0000 \n")
	disabled, enabled := true, false
	r.conf = &birdlint.Conf{Files: []string{"/etc/bird/bird.conf"}, Protocols: map[string]birdlint.ConfProtocol{
		"wg_vip4":      {Type: "static", Name: "wg_vip4", Disabled: &disabled, File: "/etc/bird/bird.conf", Line: 4},
		"other_static": {Type: "static", Name: "other_static", Disabled: &enabled, File: "/etc/bird/bird.conf", Line: 9},
		"up_peer":      {Type: "bgp", Name: "up_peer", File: "/etc/bird/bird.conf", Line: 17},
	}}
	return r
}

func (r *checkRig) run(t *testing.T) (string, error) {
	t.Helper()
	vip := r.cfg.Services[0].VIPs
	var out bytes.Buffer
	err := check(context.Background(), &out, r.cfg, checkDeps{
		BIRD: r.bird,
		Daemon: daemon.Deps{
			WireGuard: r.wg,
			Links:     fakes.NewLinks(fakes.UpLink(vip...)),
			Exec:      fakes.Exec(true, "exit status 0"),
		},
		BIRDConf:  func() (*birdlint.Conf, error) { return r.conf, nil },
		Now:       time.Now,
		VIPSource: r.vipsrc,
		Running:   func() bool { return r.running },
	})
	for _, c := range r.bird.Commands() {
		if strings.HasPrefix(c, "enable") || strings.HasPrefix(c, "disable") {
			t.Errorf("check sent %q to BIRD", c)
		}
	}
	return out.String(), err
}

func TestCheckHealthy(t *testing.T) {
	r := newCheckRig(t, "wg_vip4")
	out, err := r.run(t)
	if code := exitCode(err); code != ExitOK {
		t.Fatalf("exit %d (%v), want 0:\n%s", code, err, out)
	}
	for _, s := range []string{"BIRD: reachable at /run/bird/bird.ctl, BIRD 2.0.12", "vpn4 (interface wg0): ANNOUNCED", "wireguard  ok", "wg_vip4"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, "Warnings:") || strings.Contains(out, "Not verified:") {
		t.Errorf("warnings for a good set-up:\n%s", out)
	}
	want := []string{"show protocols", "show status", "show protocols all", "show route table master4 export up_peer protocol wg_vip4 count"}
	if diff := cmp.Diff(want, r.bird.Commands()); diff != "" {
		t.Errorf("BIRD commands (-want +got):\n%s", diff)
	}
}

func TestCheckUnhealthy(t *testing.T) {
	r := newCheckRig(t, "wg_vip4")
	r.wg.Set(fakes.Device(51820, 0, time.Time{}), nil)
	out, err := r.run(t)
	if code := exitCode(err); code != ExitFailure || err.Error() != "unhealthy: vpn4" {
		t.Fatalf("exit %d (%v), want 1 (unhealthy: vpn4):\n%s", code, err, out)
	}
	if !strings.Contains(out, "wireguard  FAIL") {
		t.Errorf("the failed check is not shown:\n%s", out)
	}
}

func TestCheckWarnings(t *testing.T) {
	r := newCheckRig(t, "other_static", "up_peer")
	out, err := r.run(t)
	if code := exitCode(err); code != ExitOK {
		t.Fatalf("exit %d (%v): warnings must not change the exit status:\n%s", code, err, out)
	}
	for _, s := range []string{
		"protocol other_static (/etc/bird/bird.conf:9) is not `disabled`",
		"no BGP protocol exports other_static's routes",
		"controls BGP protocol up_peer",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
}

func TestCheckUnknownProtocol(t *testing.T) {
	r := newCheckRig(t, "nosuch")
	out, err := r.run(t)
	if code := exitCode(err); code != ExitConfig || !strings.Contains(err.Error(), `BIRD has no protocol "nosuch"`) {
		t.Fatalf("exit %d (%v), want 2:\n%s", code, err, out)
	}
}

func TestCheckBIRDDown(t *testing.T) {
	r := newCheckRig(t, "wg_vip4")
	r.bird.SetError(errors.New("dial unix /run/bird/bird.ctl: connect: no such file or directory"))
	out, err := r.run(t)
	// WireGuard is healthy: BIRD being down is shown but is not wgbird's
	// health (as ExecStartPre, BIRD may start after wgbird).
	if code := exitCode(err); code != ExitOK {
		t.Fatalf("exit %d (%v), want 0:\n%s", code, err, out)
	}
	if !strings.Contains(out, "BIRD: NOT REACHABLE at /run/bird/bird.ctl") {
		t.Errorf("BIRD's state not shown:\n%s", out)
	}
}

// TestCheckBIRDErrorOnce: BIRD's client names the action itself; check
// must not name it again ("reading protocols: reading protocols: ...").
func TestCheckBIRDErrorOnce(t *testing.T) {
	r := newCheckRig(t, "wg_vip4")
	r.bird.SetError(errors.New("reading protocols: dial unix /run/bird/bird.ctl: connect: no such file or directory"))
	out, _ := r.run(t)
	if n := strings.Count(out, "reading protocols"); n == 0 || strings.Contains(out, "reading protocols: reading protocols") {
		t.Errorf("the action is named %d times, want once per error:\n%s", n, out)
	}
}

func TestCheckConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[[service]]\ninterface = 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{bad, filepath.Join(dir, "absent.toml")} {
		code, stdout, stderr := runMain("check", "--config", path)
		if code != ExitConfig || stdout != "" || !strings.HasPrefix(stderr, "wgbird check: "+path) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 2 naming the file", path, code, stdout, stderr)
		}
	}
}

func TestCheckVIPSource(t *testing.T) {
	var asked []continuity.Config
	inPlace := false
	inspect := func(c continuity.Config) (vipsrc.State, error) {
		asked = append(asked, c)
		fs := vipsrc.FamilyState{Family: "ipv4", VIP: c.VIP4.String(), Rule: inPlace, Guard: inPlace, Routes: 3, Want: 3}
		if !inPlace {
			fs.Error = "no rule for udp sport 51820 (wgbird run puts it in place)"
		}
		return vipsrc.State{Port: c.ListenPort, Table: c.Table, Families: []vipsrc.FamilyState{fs}}, nil
	}
	for _, c := range []struct {
		name             string
		inPlace, running bool
		want, notWant    string
	}{
		{"in place", true, true, "VIP source:  in place: ipv4: udp sport 51820 from 192.168.20.1 (table 22338, 3/3 routes)", "VIP-sourcing"},
		{"no wgbird runs: a note", false, false, "Not verified:\n  - service \"vpn4\": VIP-sourcing is not in place (no wgbird runs;", "Warnings:"},
		{"wgbird runs: a warning", false, true, "Warnings:\n  ! service \"vpn4\": WireGuard's packets would not all leave from the VIP", "Not verified:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newCheckRig(t, "wg_vip4")
			r.cfg.Services[0].VIPSource = true
			r.vipsrc, r.running, inPlace = inspect, c.running, c.inPlace
			out, err := r.run(t)
			if code := exitCode(err); code != ExitOK {
				t.Fatalf("exit %d (%v): VIP-sourcing must not make check fail:\n%s", code, err, out)
			}
			if !strings.Contains(out, c.want) || strings.Contains(out, c.notWant) {
				t.Errorf("output lacks %q or has %q:\n%s", c.want, c.notWant, out)
			}
		})
	}
	// The device's port, read by the wireguard check, when listen_port
	// is not set; the table is the service's default.
	if len(asked) == 0 || asked[0].ListenPort != 51820 || asked[0].Table != vipsrc.DefaultTable || asked[0].VIP4 != netip.MustParseAddr("192.168.20.1") {
		t.Errorf("inspected %+v", asked)
	}
}
