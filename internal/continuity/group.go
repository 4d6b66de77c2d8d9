package continuity

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/group"
	"github.com/wgbird/wgbird/internal/handover"
	"github.com/wgbird/wgbird/internal/health"
)

// keyRead bounds the read of the device's private key.
const keyRead = 500 * time.Millisecond

// groupKey is the group's key: from the configured secret, or derived
// from the device's private key (every member holds the same one).
func (u *unit) groupKey(ctx context.Context) (group.Key, error) {
	if u.cfg.Secret != nil {
		return group.DeriveKey(u.cfg.Secret)
	}
	ctx, cancel := context.WithTimeout(ctx, keyRead)
	defer cancel()
	dev, err := u.reader.Device(ctx, u.cfg.Interface)
	if err != nil {
		return group.Key{}, err
	}
	if dev.PrivateKey == (wgtypes.Key{}) {
		return group.Key{}, errNoKey
	}
	return group.DeriveKey(dev.PrivateKey[:])
}

type errString string

func (e errString) Error() string { return string(e) }

const errNoKey = errString("the device has no private key to derive the group key from")

// runGroup keeps the group node running: it waits for the key (the
// device may not be there yet) and re-opens the node if the key changes
// (a key rotation).
func (u *unit) runGroup(ctx context.Context) {
	retry := time.NewTicker(5 * time.Second)
	defer retry.Stop()
	for {
		key, err := u.groupKey(ctx)
		if err == nil {
			err = u.serveGroup(ctx, key)
		}
		if ctx.Err() != nil {
			return
		}
		u.mu.Lock()
		changed := u.groupErr != errText(err)
		u.groupErr = errText(err)
		u.mu.Unlock()
		if err != nil && changed {
			u.log.Warn("group: not running", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-retry.C:
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// serveGroup runs the node with key until ctx ends or the key changes.
func (u *unit) serveGroup(ctx context.Context, key group.Key) error {
	n, err := group.Listen(netip.Addr{}, u.cfg.GroupPort, u.cfg.Group, key, u.log)
	if err != nil {
		return err
	}
	u.mu.Lock()
	u.node, u.groupErr = n, ""
	u.mu.Unlock()
	u.log.Info("group: sharing peers with the members", "port", u.cfg.GroupPort, "members", u.cfg.Group)
	nctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); n.Run(nctx, u.snapshot) }()
	// A changed key (rotation) restarts the node; a secret never changes.
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	last := u.groupState()
	for {
		select {
		case <-ctx.Done():
			<-done
			return nil
		case <-u.stateChanged:
			// A state change goes out at once.
			if s := u.groupState(); s != last {
				last = s
				n.Changed()
			}
		case <-t.C:
			if u.cfg.Secret != nil {
				continue
			}
			if k, err := u.groupKey(ctx); err == nil && k != key {
				cancel()
				<-done
				u.mu.Lock()
				u.node = nil
				u.mu.Unlock()
				u.log.Info("group: the device's key changed; re-keying the group")
				return nil
			}
		}
	}
}

func (u *unit) groupState() group.State {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case u.drained:
		return group.Drained
	case u.state == health.Announced:
		return group.Announced
	case u.state == health.Withdrawn:
		return group.Withdrawn
	}
	return group.Unknown
}

// snapshot is what this member tells the group: its state and every peer
// with an endpoint and a handshake or activity within group.Expire, the
// most recently active first.
func (u *unit) snapshot() group.Snapshot {
	s := group.Snapshot{State: u.groupState()}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.dev == nil {
		return s
	}
	now := time.Now()
	type cand struct {
		e  group.Entry
		at time.Time
	}
	var cs []cand
	for _, p := range u.dev.Peers {
		if !p.Endpoint.IsValid() || p.Endpoint.Addr().IsLoopback() {
			continue // no endpoint, or the probe's peer: no client
		}
		e := group.Entry{Peer: p.Key, Endpoint: p.Endpoint, HandshakeAge: -1, ActivityAge: -1}
		latest := time.Time{}
		if !p.LastHandshake.IsZero() {
			e.HandshakeAge = now.Sub(p.LastHandshake)
			latest = p.LastHandshake
		}
		if a, ok := u.activity[p.Key]; ok && !a.at.IsZero() {
			e.ActivityAge = now.Sub(a.at)
			if a.at.After(latest) {
				latest = a.at
			}
		}
		if latest.IsZero() || now.Sub(latest) > group.Expire {
			continue
		}
		cs = append(cs, cand{e, latest})
	}
	slices.SortFunc(cs, func(a, b cand) int { return b.at.Compare(a.at) })
	for _, c := range cs {
		s.Peers = append(s.Peers, c.e)
	}
	return s
}

// groupTable adapts the node's table to the tracker.
type groupTable struct{ n *group.Node }

func (g groupTable) Lookup(ep netip.AddrPort, index uint32, now time.Time) (wgtypes.Key, bool) {
	var f group.Found
	var ok bool
	g.n.With(func(t *group.Table) { f, ok = t.Lookup(ep, index, now) })
	return wgtypes.Key(f.Peer), ok
}

func (u *unit) groupLookup() handover.Group {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.node == nil {
		return nil
	}
	return groupTable{u.node}
}
