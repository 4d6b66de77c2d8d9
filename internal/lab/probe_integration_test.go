//go:build integration

package lab

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// probeLabDir and probeLabPrefix keep this test's lab apart from the
// shared one, so both can run at once.
const (
	probeLabDir    = "/run/wgbp-itest"
	probeLabPrefix = "wgbp"
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
// passive check green, so without the probe the router keeps sending it
// clients it cannot serve; with the probe its nexthop goes after fall, the
// other server's never does, and after heal it comes back after rise.
func TestProbeKeyRotate(t *testing.T) {
	requirePrereqs(t)
	if wgbirdErr != nil {
		if ciMode() {
			t.Fatal(wgbirdErr)
		}
		t.Skipf("no wgbird: %v", wgbirdErr)
	}
	ctx := context.Background()
	th := testThresholds.Effective()
	start := time.Now()
	l, err := Up(ctx, Config{Dir: probeLabDir, Prefix: probeLabPrefix, Wgbird: wgbirdBin, Thresholds: testThresholds, Log: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	if err := l.WaitRouted(ctx, 30*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, l.logs())
	}
	t.Logf("lab up and routed via both servers in %s", time.Since(start).Round(time.Millisecond))
	s1, s2 := Servers[0], Servers[1]
	w := watch(t, l)

	// Without the probe, nothing notices.
	t0, err := l.FailKeyRotate(ctx, s1.Name)
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

	// With the probe.
	if err := l.EnableProbe(ctx); err != nil {
		t.Fatalf("%v\n%s", err, l.logs())
	}
	// The restarted wgbirds find the protocols enabled and everything
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

	t0, err = l.FailKeyRotate(ctx, s1.Name)
	if err != nil {
		t.Fatal(err)
	}
	c := waitFor(t, w, t0, 15*time.Second, s1.Name+"'s nexthop withdrawn by the probe", Lacks(s1.Addr))
	took := c.At.Sub(t0)
	t.Logf("key-rotate on %s with the probe: nexthop withdrawn %d ms after the fault (interval %s, fall %d)", s1.Name, took.Milliseconds(), th.Interval, th.Fall)

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

	time.Sleep(th.Interval)
	if bad := w.Always(c.At, time.Now(), Lacks(s1.Addr)); bad != nil {
		t.Errorf("%s came back before heal: %v", s1.Name, bad)
	}
	h := time.Now()
	if err := l.Heal(ctx, s1.Name); err != nil {
		t.Fatal(err)
	}
	back := waitFor(t, w, h, 20*time.Second, s1.Name+"'s nexthop back after heal", Has(s1.Addr))
	min := time.Duration(th.Rise-1)*th.Interval - th.Interval/10
	t.Logf("heal: nexthop back %d ms after heal began (rise %d x %s: no earlier than %d ms)", back.At.Sub(h).Milliseconds(), th.Rise, th.Interval, min.Milliseconds())
	if back.At.Sub(h) < min {
		t.Errorf("%s announced %s after heal began, before rise allows (%s)", s1.Name, back.At.Sub(h), min)
	}
	if bad := w.Always(start, time.Now(), Has(s2.Addr)); bad != nil {
		t.Errorf("%s's nexthop disappeared: %v\nchanges: %v", s2.Name, bad, w.Changes())
	}
	checkConsistent(t, l, w)
}
