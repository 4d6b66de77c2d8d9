package vipsrc

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/wgbird/wgbird/internal/rtnl"
	"github.com/wgbird/wgbird/internal/tick"
)

// Keeper keeps one service's set-up in place: it syncs at start, after
// every route, address or rule change (debounced), when the port changes,
// and every resync period as a safety net: every resyncEvents while it
// reads the kernel's notifications (which say when they were lost), every
// resync without them.
type Keeper struct {
	nl  NL
	log *slog.Logger

	mu      sync.Mutex
	cfg     Config
	state   State
	lastErr string
	kick    chan struct{}
}

// Timing of the Keeper.
const (
	debounce     = 10 * time.Millisecond
	resync       = 5 * time.Second
	resyncEvents = 30 * time.Second
)

// NewKeeper returns a Keeper for cfg; h nil means netlink in the network
// namespace of the calling thread.
func NewKeeper(h NL, cfg Config, log *slog.Logger) *Keeper {
	if h == nil {
		h = &netlink.Handle{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Keeper{nl: h, cfg: cfg.withDefaults(), log: log, kick: make(chan struct{}, 1)}
}

// State returns what the latest sync found.
func (k *Keeper) State() State {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.state
}

// SetPort sets the listen port (learned from the device when not
// configured) and syncs at once if it changed.
func (k *Keeper) SetPort(port int) {
	k.mu.Lock()
	changed := k.cfg.Port != port
	k.cfg.Port = port
	k.mu.Unlock()
	if changed {
		k.Kick()
	}
}

// Kick asks for a sync now.
func (k *Keeper) Kick() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

// Sync syncs once and logs a change of outcome once.
func (k *Keeper) Sync() State {
	k.mu.Lock()
	defer k.mu.Unlock()
	old := k.state
	st, err := Sync(k.nl, k.cfg)
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	switch {
	case msg != "" && msg != k.lastErr:
		k.log.Warn("VIP-sourced WireGuard traffic not in place", "err", msg)
	case msg == "" && st.InPlace() && (k.lastErr != "" || !old.InPlace() || old.Port != st.Port):
		k.log.Info("VIP-sourced WireGuard traffic in place", "detail", st.Detail())
	}
	k.lastErr = msg
	k.state = st
	return st
}

// Run keeps the set-up until ctx ends; it does not remove it (see
// Remove). Route, address and rule events come from a subscription in
// the network namespace of the calling thread.
func (k *Keeper) Run(ctx context.Context) {
	// One goroutine reads the events socket and signals changed; closing
	// the socket ends it.
	changed := make(chan struct{}, 1)
	period := resync
	var readerDone chan struct{} // closed when reading events ends
	ev, err := rtnl.Open(eventGroups)
	if err != nil {
		k.log.Warn("VIP-sourcing: no netlink subscription; re-syncing every "+resync.String()+" only", "err", err)
	} else {
		period = resyncEvents
		readerDone = make(chan struct{})
		defer func() { ev.Close(); <-readerDone }()
		go func() {
			defer close(readerDone)
			k.readEvents(ev, changed)
		}()
	}
	k.Sync()
	// On the clock grid (tick.Until), with wgbird's other periodic work.
	resyncT := time.NewTimer(tick.Until(time.Now(), period))
	defer resyncT.Stop()
	ended := readerDone
	var pending <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
			if pending == nil {
				pending = time.After(debounce)
			}
		case <-k.kick:
			k.Sync()
		case <-pending:
			pending = nil
			k.Sync()
		case <-ended:
			// Reading events failed (logged): sync now, then every
			// resync.
			ended, period = nil, resync
			resyncT.Reset(tick.Until(time.Now(), period))
			k.Sync()
		case <-resyncT.C:
			resyncT.Reset(tick.Until(time.Now(), period))
			k.Sync()
		}
	}
}

// readEvents signals changed for every datagram that calls for a sync,
// until the socket is closed or fails; a failure is logged once, and the
// resync period is left to catch changes.
func (k *Keeper) readEvents(ev *rtnl.Socket, changed chan<- struct{}) {
	for {
		msgs, err := ev.Read()
		if errors.Is(err, rtnl.ErrLost) || err == nil && needsSync(msgs, k.table()) {
			select {
			case changed <- struct{}{}:
			default:
			}
		}
		switch {
		case err == nil, errors.Is(err, rtnl.ErrLost):
		case errors.Is(err, os.ErrClosed):
			return
		default:
			k.log.Warn("VIP-sourcing: reading netlink events failed; re-syncing every "+resync.String()+" only", "err", err)
			return
		}
	}
}

func (k *Keeper) table() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cfg.Table
}

// Remove deletes what the Keeper's configuration adds.
func (k *Keeper) Remove() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.state = State{Port: k.cfg.Port, Table: k.cfg.Table}
	return Remove(k.nl, k.cfg)
}
