//go:build integration

package lab

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wgbird/wgbird/internal/labjudge"
)

// checkView is one check as `wgbird status --json` shows it.
type checkView struct {
	OK     bool
	Detail string
}

// statusChecks returns the checks in a `wgbird status --json` document by
// name, whatever the exact schema: any object with a name and an ok key.
func statusChecks(raw json.RawMessage) map[string]checkView {
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil
	}
	out := map[string]checkView{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			var name, detail string
			var ok, hasOK bool
			for k, x := range v {
				switch strings.ToLower(k) {
				case "name":
					name, _ = x.(string)
				case "ok":
					ok, hasOK = x.(bool)
				case "detail":
					detail, _ = x.(string)
				}
			}
			if name != "" && hasOK {
				out[name] = checkView{OK: ok, Detail: detail}
			}
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	return out
}

// TestProbeKeyRotate: a server whose WireGuard key drifted keeps every
// passive check green, so a wgbird without the probe keeps sending it
// clients it cannot serve; with the probe only the probe check fails.
// (TestFaultModes/key-rotate times the withdrawal and the return after
// rise.)
func TestProbeKeyRotate(t *testing.T) {
	l := sharedLab(t)
	ctx := context.Background()
	th := testThresholds.Effective()
	s1, s2 := Servers[0], Servers[1]
	w := watch(t, l)

	// Without the probe (s1's wgbird restarted without [service.probe];
	// SIGTERM leaves BIRD as it is), nothing notices.
	setProbe := func(on bool) {
		t.Helper()
		l.cfg.NoProbe = !on
		if err := l.RestartWgbird(ctx, s1.Name); err != nil {
			t.Fatal(err)
		}
	}
	setProbe(false)
	t.Cleanup(func() { setProbe(true) })
	t0, err := l.Fail(ctx, s1.Name, KeyRotate)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Duration(th.Fall+3) * th.Interval)
	if bad := w.Always(t0, time.Now(), All); bad != nil {
		t.Fatalf("without the probe, key-rotate changed the routes: %v\n%s", bad, l.logs())
	}
	t.Logf("without the probe: %s kept its nexthop for %s with a drifted key", s1.Name, time.Since(t0).Round(time.Millisecond))
	if err := l.Heal(ctx, s1.Name); err != nil {
		t.Fatal(err)
	}
	setProbe(true)
	// The restarted wgbird finds the protocol enabled and everything
	// healthy: routing must not change.
	time.Sleep(time.Duration(th.Rise) * th.Interval)
	if err := l.WaitRouted(ctx, 30*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, l.logs())
	}
	for _, s := range Servers {
		raw, err := l.WgbirdStatus(ctx, s.Name)
		if err != nil {
			t.Fatal(err)
		}
		if c, ok := statusChecks(raw)["probe"]; !ok || !c.OK {
			t.Fatalf("%s: probe check %+v (present %v), want OK\n%s", s.Name, c, ok, raw)
		} else {
			t.Logf("%s probe: %s", s.Name, c.Detail)
		}
	}

	// With the probe.
	t0, err = l.Fail(ctx, s1.Name, KeyRotate)
	if err != nil {
		t.Fatal(err)
	}
	c := waitFor(t, w, t0, 15*time.Second, s1.Name+"'s nexthop withdrawn by the probe", labjudge.Lacks(s1.Addr))
	t.Logf("key-rotate on %s with the probe: nexthop withdrawn %d ms after the fault (interval %s, fall %d)", s1.Name, c.At.Sub(t0).Milliseconds(), th.Interval, th.Fall)
	raw, err := l.WgbirdStatus(ctx, s1.Name)
	if err != nil {
		t.Fatal(err)
	}
	checks := statusChecks(raw)
	for _, name := range []string{"link", "wireguard"} {
		if !checks[name].OK {
			t.Errorf("%s check %+v, want OK: only the probe may see key drift", name, checks[name])
		}
	}
	if p := checks["probe"]; p.OK {
		t.Errorf("probe check %+v, want failing", p)
	} else {
		t.Logf("%s probe: %s", s1.Name, p.Detail)
	}
	if err := l.Heal(ctx, s1.Name); err != nil {
		t.Fatal(err)
	}
	waitFor(t, w, t0, 20*time.Second, "both nexthops after heal", All)
	if bad := w.Always(w.Changes()[0].At, time.Now(), labjudge.Has(s2.Addr)); bad != nil {
		t.Errorf("%s's nexthop disappeared: %v\nchanges: %v", s2.Name, bad, w.Changes())
	}
}
