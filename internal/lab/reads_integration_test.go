//go:build integration

package lab

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/api"
	"github.com/wgbird/wgbird/internal/control"
	"github.com/wgbird/wgbird/internal/labjudge"
	"github.com/wgbird/wgbird/internal/labtest"
)

// TestStatusReadsKeepRoute is issue 12's bug: a monitoring script polling
// a server's status and peer listing while wgbird reads its WireGuard
// device must never make the server look unhealthy. With 1,000 peers on
// s1's wg0 (a read takes milliseconds), four clients read status and
// peers through s1's control socket without pause for several intervals;
// s1's nexthop must stay at the router throughout.
func TestStatusReadsKeepRoute(t *testing.T) {
	labtest.RequireLab(t)
	l := sharedLab(t)
	ctx := context.Background()
	s := Servers[0]
	t.Cleanup(func() {
		// Heal's syncconf drops the added peers again.
		if err := l.Heal(context.Background(), s.Name); err != nil {
			t.Errorf("healing %s: %v", s.Name, err)
		}
	})
	addTestPeers(t, l, s.Name, 1000)
	w := watch(t, l)
	// Let the loop read the grown device once before judging.
	time.Sleep(2 * testThresholds.Interval)
	if !labjudge.Has(s.Addr)(w.Current()) {
		t.Fatalf("%s not routed before the reads: %s", s.Name, labjudge.FormatNexthops(w.Current()))
	}

	c := control.NewClient(l.ControlSocket(s.Name), 5*time.Second)
	defer c.Close()
	t0 := time.Now()
	rctx, stop := context.WithTimeout(ctx, 8*testThresholds.Interval)
	defer stop()
	var reads, peers, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rctx.Err() == nil {
				var err error
				if i%2 == 0 {
					_, err = c.Status(rctx)
				} else {
					var r api.PeersReply
					r, err = c.Peers(rctx, WGInterface)
					if err == nil {
						peers.Store(int64(len(r.Peers)))
					}
				}
				switch {
				case rctx.Err() != nil:
				case err != nil:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				default:
					reads.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d status and peer reads in %s (%d failed), %d peers listed", reads.Load(), time.Since(t0).Round(time.Millisecond), failed.Load(), peers.Load())
	if reads.Load() < 20 {
		t.Errorf("only %d reads succeeded, want a busy loop of them (first error: %v)", reads.Load(), firstErr.Load())
	}
	if peers.Load() < 1000 {
		t.Errorf("the peer listing had %d peers, want at least 1,000", peers.Load())
	}
	keptRoute(t, w, t0, s)
	if st := wgbirdService(t, l, s.Name); st.State != "announced" {
		t.Errorf("%s after the reads: state %q, want announced", s.Name, st.State)
	}
}

// addTestPeers adds peers to node's wg0 until it has n.
func addTestPeers(t *testing.T, l *Lab, node string, n int) {
	t.Helper()
	ctx := context.Background()
	var conf strings.Builder
	for i := range n {
		k, err := wgtypes.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&conf, "[Peer]\nPublicKey = %s\nAllowedIPs = 10.201.%d.%d/32\n\n", k.PublicKey(), i>>8, i&0xff)
	}
	file := l.path(node, "test-peers.conf")
	if err := os.WriteFile(file, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := l.WG(ctx, node, "addconf", WGInterface, file); err != nil {
		t.Fatalf("adding peers: %v", err)
	}
}
