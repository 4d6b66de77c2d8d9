// Package continuity keeps clients' tunnels alive across a failover: per
// service it keeps WireGuard's packets VIP-sourced (vipsrc), shares the
// peers' endpoints with the anycast group (group), watches the wire for
// clients that arrive without a session (sniff, handover) and takes them
// over (takeover). It is a daemon Observer: the service loops tell it
// their state and device, and nothing in it can delay them.
package continuity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/api"
	"github.com/wgbird/wgbird/internal/group"
	"github.com/wgbird/wgbird/internal/handover"
	"github.com/wgbird/wgbird/internal/health"
	"github.com/wgbird/wgbird/internal/rtnl"
	"github.com/wgbird/wgbird/internal/sniff"
	"github.com/wgbird/wgbird/internal/takeover"
	"github.com/wgbird/wgbird/internal/tick"
	"github.com/wgbird/wgbird/internal/vipsrc"
	"github.com/wgbird/wgbird/internal/wireguard"
)

// Config is one service's part.
type Config struct {
	Service, Interface string
	// ListenPort is the configured WireGuard port; 0 takes the device's.
	ListenPort int
	VIP4, VIP6 netip.Addr

	// VIPSource keeps WireGuard's packets sourced from the VIP.
	VIPSource       bool
	Table, Priority int
	// Takeover watches the wire and takes clients over.
	Takeover bool
	// Group are the members' addresses (this server's own included or
	// not); none: no group, takeovers find peers on this device only.
	Group     []netip.Addr
	GroupPort int
	// Secret keys the group; nil derives the key from the device's
	// private key.
	Secret []byte
}

// Recorder counts takeovers (metrics).
type Recorder interface {
	// TakeoverStarted: method "keepalive" or "readd", result "ok" or
	// "error".
	TakeoverStarted(service, method, result string)
	// TakeoverAnswered: the client's handshake response came back after.
	TakeoverAnswered(service string, after time.Duration)
}

// Manager runs every service's unit.
type Manager struct {
	units  []*unit
	byName map[string]*unit
}

// DeviceReader reads a device with a deadline (*wireguard.Reader, the
// daemon's own: sharing it keeps one read per device in flight, so a hung
// wireguard-go holds one connection, not one for the checks and one for
// continuity). Peers is the frequent read (the peers' endpoints and
// counters); Device only gives the group its key.
type DeviceReader interface {
	Peers(ctx context.Context, name string) (*wireguard.Peers, error)
	Device(ctx context.Context, name string) (*wgtypes.Device, error)
}

var (
	_ DeviceReader = (*wireguard.Reader)(nil)
	_ DeviceReader = takerReader{}
)

// takerReader reads through a takeover.Taker, one call in flight per
// device: New's reader when it is given none.
type takerReader struct{ *takeover.Taker }

func (t takerReader) Peers(ctx context.Context, name string) (*wireguard.Peers, error) {
	d, err := t.Device(ctx, name)
	if err != nil {
		return nil, err
	}
	return wireguard.PeersFromWgctrl(d), nil
}

// New returns a Manager; c configures devices for takeovers (wgctrl) and
// reader reads them. A nil reader reads through c, one call in flight per
// device.
func New(cfgs []Config, c takeover.Client, reader DeviceReader, rec Recorder, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{byName: map[string]*unit{}}
	taker := takeover.New(c)
	if reader == nil {
		reader = takerReader{takeover.New(c)}
	}
	for _, cfg := range cfgs {
		u := &unit{
			cfg: cfg, taker: taker, reader: reader, rec: rec, log: log.With("service", cfg.Service),
			kick: make(chan struct{}, 1), stateChanged: make(chan struct{}, 1), tracker: handover.New(time.Now()),
		}
		if cfg.VIPSource {
			u.keeper = vipsrc.NewKeeper(nil, vipsrc.Config{Port: cfg.ListenPort, VIP4: cfg.VIP4, VIP6: cfg.VIP6, Table: cfg.Table, Priority: cfg.Priority}, u.log)
		}
		m.units = append(m.units, u)
		m.byName[cfg.Service] = u
	}
	return m
}

// Run runs until ctx ends. It leaves the VIP-sourcing in place: see
// Remove.
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, u := range m.units {
		wg.Add(1)
		go func() { defer wg.Done(); u.run(ctx) }()
	}
	wg.Wait()
}

// Remove removes the VIP-sourcing of every service (on exit, unless
// wgbird is restarting).
func (m *Manager) Remove() error {
	var errs []error
	for _, u := range m.units {
		if u.keeper != nil {
			if err := u.keeper.Remove(); err != nil {
				errs = append(errs, fmt.Errorf("service %q: removing VIP-sourcing: %w", u.cfg.Service, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Evaluated records a service's evaluation; it never blocks.
func (m *Manager) Evaluated(e health.Evaluation) {
	if u := m.byName[e.Service]; u != nil {
		// An evaluation carries only the device's figures (the check reads
		// a summary); the unit's loop reads the full device on the kick
		// when they moved, or fullReadEvery after its last read.
		u.observeSummary(e.Device)
		u.observe(e.State, e.Drained, nil)
	}
}

// Transitioned is part of the Observer: the next evaluation carries the
// new state.
func (m *Manager) Transitioned(string, health.Transition) {}

// Status returns the service's continuity status, nil for an unknown one.
func (m *Manager) Status(service string) *api.Continuity {
	u := m.byName[service]
	if u == nil {
		return nil
	}
	return u.status()
}

// unit is one service's continuity.
type unit struct {
	cfg   Config
	taker *takeover.Taker
	// reader reads the device apart from the taker (a read in flight
	// never holds up a takeover), through the daemon's Reader.
	reader DeviceReader
	rec    Recorder
	log    *slog.Logger
	keeper *vipsrc.Keeper

	kick chan struct{}
	// stateChanged is signalled when state or drained changed (the group
	// tells the members at once).
	stateChanged chan struct{}

	mu       sync.Mutex
	state    health.State
	drained  bool
	dev      *wireguard.Peers
	devAt    time.Time
	node     *group.Node
	sniffErr string
	groupErr string
	last     *api.Takeover
	// activity: when each peer's counters last moved, for the group;
	// activityRead counts the reads noted.
	activity     map[wgtypes.Key]activity
	activityRead uint32
	stats        handover.Stats // the tracker's, copied by the loop
	// routeWarnings: clients a packet would not reach from the VIP.
	routeWarnings []string

	// summary is the device's figures in the latest evaluation that read
	// them; moved says they differ from those of the evaluation before.
	summary *health.DeviceStats
	moved   bool

	// Owned by the unit's loop.
	tracker *handover.Tracker
	ifindex int
	synced  *wireguard.Peers // the read the tracker was last fed
}

// fullReadEvery bounds how long the unit goes without a full device read
// while the evaluations' figures (peer count, newest handshake) stay put:
// the group's endpoints and activity are at most this old then. A new
// session is read at once (the sniffer sees a packet to an endpoint the
// last read did not have), a changed peer list, listen port or handshake
// at the next evaluation. A full read of 1,000 peers costs about 0.7 ms
// of CPU and 0.26 MiB (through wgctrl 3 ms and 1 MiB; at every evaluation
// that was a third of an idle wgbird's CPU).
const fullReadEvery = 10 * time.Second

// observeSummary records an evaluation's device figures (nil: not read).
func (u *unit) observeSummary(d *health.DeviceStats) {
	if d == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.summary == nil || u.summary.Peers != d.Peers || u.summary.ListenPort != d.ListenPort ||
		!u.summary.NewestClientHandshake.Equal(d.NewestClientHandshake) {
		u.moved = true
	}
	c := *d
	u.summary = &c
}

// readDue reports whether the kick calls for a full read (and clears the
// figures' change): they moved, or the last read is fullReadEvery old.
func (u *unit) readDue(now time.Time, last time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	due := u.moved || u.dev == nil || last.IsZero() || now.Sub(last) >= fullReadEvery
	u.moved = false
	return due
}

type activity struct {
	rx, tx int64
	at     time.Time
	read   uint32 // the read (activityRead) that last had the peer
}

func (u *unit) observe(st health.State, drained bool, dev *wireguard.Peers) {
	u.mu.Lock()
	changed := u.state != st || u.drained != drained
	u.state, u.drained = st, drained
	if changed {
		select {
		case u.stateChanged <- struct{}{}:
		default:
		}
	}
	if dev != nil {
		u.dev, u.devAt = dev, time.Now()
		u.noteActivity(dev, u.devAt)
	}
	u.mu.Unlock()
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

// noteActivity tracks when each peer's counters moved; u.mu is held.
func (u *unit) noteActivity(dev *wireguard.Peers, now time.Time) {
	if u.activity == nil {
		u.activity = map[wgtypes.Key]activity{}
	}
	u.activityRead++
	read := u.activityRead
	for _, p := range dev.Peers {
		a, ok := u.activity[p.Key]
		if !ok || a.rx != p.RxBytes || a.tx != p.TxBytes {
			a.rx, a.tx, a.at = p.RxBytes, p.TxBytes, now
			if !ok {
				a.at = time.Time{} // unknown before the first read
			}
		}
		a.read = read
		u.activity[p.Key] = a
	}
	for k, a := range u.activity {
		if a.read != read {
			delete(u.activity, k) // gone from the device
		}
	}
}

// readDevice reads the full device now and keeps it, as the refresh of
// the takeover loop does.
func (u *unit) readDevice(ctx context.Context) {
	if u.reader == nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, keyRead)
	dev, err := u.reader.Peers(rctx, u.cfg.Interface)
	cancel()
	if err != nil || dev == nil {
		return
	}
	u.mu.Lock()
	u.dev, u.devAt = dev, time.Now()
	u.noteActivity(dev, u.devAt)
	u.mu.Unlock()
}

func (u *unit) port() int {
	if u.cfg.ListenPort != 0 {
		return u.cfg.ListenPort
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.dev != nil {
		return u.dev.ListenPort
	}
	return 0
}

func (u *unit) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if u.keeper != nil {
		wg.Add(1)
		go func() { defer wg.Done(); u.keeper.Run(ctx) }()
		wg.Add(1)
		go func() { defer wg.Done(); u.checkRoutes(ctx) }()
	}
	// Wait for the port (the device's, unless configured).
	port := u.port()
	for port == 0 {
		select {
		case <-ctx.Done():
			return
		case <-u.kick:
		}
		u.readDevice(ctx)
		port = u.port()
	}
	if u.keeper != nil {
		u.keeper.SetPort(port)
	}
	if !u.cfg.Takeover {
		<-ctx.Done()
		return
	}
	if len(u.cfg.Group) > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); u.runGroup(ctx) }()
	}
	// A changed listen port (the device's, when none is configured) is
	// watched anew.
	for ctx.Err() == nil {
		u.watch(ctx, port)
		if p := u.port(); p != 0 {
			port = p
			if u.keeper != nil {
				u.keeper.SetPort(port)
			}
		}
	}
}

// watch runs the sniffer and the tracker until ctx ends or the listen
// port changes.
func (u *unit) watch(ctx context.Context, port int) {
	sock, err := sniff.Open(uint16(port), "lo", u.cfg.Interface)
	if err != nil {
		u.mu.Lock()
		changed := u.sniffErr != err.Error()
		u.sniffErr = err.Error()
		u.mu.Unlock()
		if changed {
			u.log.Error("session takeover off: cannot watch WireGuard's packets", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
		return
	}
	u.mu.Lock()
	u.sniffErr = ""
	u.mu.Unlock()
	u.log.Info("session takeover on: watching for clients without a session", "port", port)
	pkts := make(chan sniff.Packet, 256)
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stop()
		wg.Wait()
		sock.Close()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := sock.Run(wctx.Done(), func(p sniff.Packet) {
			select {
			case pkts <- p:
			default: // the loop is behind; the client's next packet counts
			}
		}); err != nil {
			u.log.Error("watching WireGuard's packets", "err", err)
		}
	}()
	results := make(chan takeResult, 16)
	refreshed := make(chan *wireguard.Peers, 1)
	gate := refreshGate{spacing: refreshSpacing}
	var retry <-chan time.Time // armed while a request waits out the spacing
	// Expiry every second, on the clock grid (tick.Until).
	expire := time.NewTimer(tick.Until(time.Now(), time.Second))
	defer expire.Stop()
	var inflight sync.WaitGroup
	defer inflight.Wait()
	// read reads the device in the background; refreshed gets it.
	read := func() {
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			rctx, cancel := context.WithTimeout(ctx, keyRead)
			defer cancel()
			dev, _ := u.reader.Peers(rctx, u.cfg.Interface)
			select {
			case refreshed <- dev:
			case <-ctx.Done():
			}
		}()
	}
	// serve does what the gate says: read now, or ask it again later.
	serve := func(start bool, after time.Duration) {
		switch {
		case start:
			read()
		case after > 0 && retry == nil:
			retry = time.After(after)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-pkts:
			// A session with an endpoint the device read did not have:
			// read it now, so the group learns the client within
			// milliseconds, not at the next check; a read in flight or
			// just done was asked before the session, so the gate
			// defers this one rather than drop it.
			if p.Outgoing && !u.tracker.Knows(p.Remote) {
				serve(gate.request(time.Now()))
			}
			take, back := u.tracker.Packet(p, u.groupLookup(), time.Now())
			if take != nil {
				inflight.Add(1)
				go func() {
					defer inflight.Done()
					r := u.takeOver(ctx, *take)
					select {
					case results <- r:
					case <-ctx.Done():
					}
				}()
			}
			if back != nil {
				u.answered(*back)
			}
		case r := <-results:
			u.record(r)
		case dev := <-refreshed:
			serve(gate.done(time.Now()))
			if dev != nil {
				u.mu.Lock()
				u.dev, u.devAt = dev, time.Now()
				u.noteActivity(dev, u.devAt)
				node := u.node
				u.mu.Unlock()
				u.sync()
				if node != nil {
					node.Changed()
				}
			}
		case <-u.kick:
			// Every evaluation: the peers' endpoints and counters, read
			// when the evaluation's figures moved or fullReadEvery
			// after the last read (readDue).
			if now := time.Now(); !gate.busy() && u.readDue(now, gate.last) {
				gate.began(now)
				read()
			}
			u.sync()
			if p := u.port(); p != 0 && p != port {
				u.log.Info("listen port changed: watching the new one", "from", port, "to", p)
				return
			}
		case <-retry:
			retry = nil
			serve(gate.poll(time.Now()))
		case <-expire.C:
			expire.Reset(tick.Until(time.Now(), time.Second))
			u.tracker.Expire(time.Now())
		}
		u.mu.Lock()
		u.stats = u.tracker.Stats()
		u.mu.Unlock()
		if known, changed := u.tracker.Known(); changed {
			if err := sock.SetKnown(known); err != nil {
				u.log.Warn("updating the packet filter", "err", err)
			}
		}
	}
}

// sync feeds the tracker the latest state and device.
func (u *unit) sync() {
	u.mu.Lock()
	active := u.state == health.Announced && !u.drained
	dev := u.dev
	u.mu.Unlock()
	u.tracker.SetActive(active)
	if dev == nil || dev == u.synced {
		return
	}
	u.synced = dev
	if ifc, err := net.InterfaceByName(u.cfg.Interface); err == nil && ifc.Index != u.ifindex {
		if u.ifindex != 0 {
			// A new device: the old one's sessions are gone.
			u.log.Info("WireGuard interface re-created: forgetting its sessions", "interface", u.cfg.Interface)
			u.tracker.Forget(time.Now())
		}
		u.ifindex = ifc.Index
	}
	u.tracker.SetPeers(func(yield func(handover.Peer) bool) {
		for _, p := range dev.Peers {
			if !yield(handover.Peer{Key: p.Key, Endpoint: p.Endpoint, LastHandshake: p.LastHandshake, RxBytes: p.RxBytes}) {
				return
			}
		}
	})
}

type takeResult struct {
	take handover.Take
	res  takeover.Result
	err  error
	at   time.Time
}

// refreshSpacing is the least time between two extra device reads.
const refreshSpacing = 100 * time.Millisecond

// takeOverTimeout bounds the wgctrl calls of one takeover.
const takeOverTimeout = 500 * time.Millisecond

func (u *unit) takeOver(ctx context.Context, t handover.Take) takeResult {
	at := time.Now()
	ctx, cancel := context.WithTimeout(ctx, takeOverTimeout)
	defer cancel()
	r, err := u.taker.Start(ctx, u.cfg.Interface, t.Peer, t.Endpoint, at)
	return takeResult{take: t, res: r, err: err, at: at}
}

func (u *unit) record(r takeResult) {
	result := "ok"
	if r.err != nil {
		result = "error"
		u.log.Warn("takeover failed", "peer", r.take.Peer.String(), "endpoint", r.take.Endpoint, "err", r.err)
	} else {
		u.log.Info("took over a client that arrived without a session", "peer", r.take.Peer.String(),
			"endpoint", r.take.Endpoint, "method", r.res.Method, "found_via", r.take.Via, "took", r.res.Took)
	}
	if u.rec != nil {
		u.rec.TakeoverStarted(u.cfg.Service, string(r.res.Method), result)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.last = &api.Takeover{Peer: r.take.Peer.String(), Endpoint: r.take.Endpoint.String(), At: r.at, Method: string(r.res.Method), Via: r.take.Via}
	if r.err != nil {
		u.last.Error = r.err.Error()
	}
}

func (u *unit) answered(b handover.Back) {
	u.log.Info("takeover answered: the client's handshake response is back", "peer", b.Peer.String(), "after", b.After.Round(time.Microsecond))
	if u.rec != nil {
		u.rec.TakeoverAnswered(u.cfg.Service, b.After)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.last != nil && u.last.Peer == b.Peer.String() {
		u.last.FirstPacketBack = b.After
	}
}

func (u *unit) status() *api.Continuity {
	c := &api.Continuity{}
	u.mu.Lock()
	if u.keeper != nil {
		st := u.keeper.State()
		c.VIPSource = &api.VIPSource{InPlace: st.InPlace(), Detail: st.Detail(), Warnings: u.routeWarnings}
	}
	node := u.node
	c.Takeover = &api.TakeoverStatus{Enabled: u.cfg.Takeover, Error: u.sniffErr, Last: u.last, Stats: u.stats}
	groupErr := u.groupErr
	u.mu.Unlock()
	if len(u.cfg.Group) > 0 {
		g := &api.Group{Port: u.cfg.GroupPort, Error: groupErr}
		if node != nil {
			node.With(func(t *group.Table) {
				for _, ms := range t.Members(time.Now()) {
					g.Members = append(g.Members, api.GroupMember(ms))
				}
			})
		}
		c.Group = g
	}
	return c
}

// routeCheckEvery is how often the route to every client is checked.
const routeCheckEvery = 10 * time.Second

// maxRouteWarnings bounds the clients named in the status.
const maxRouteWarnings = 8

// routeChecksPerRound bounds the route lookups of one round: a server
// with thousands of clients goes through them routeChecksPerRound at a
// time, each round going on where the last one stopped, instead of asking
// the kernel thousands of times every routeCheckEvery.
const routeChecksPerRound = 64

// checkRoutes asks the kernel, every routeCheckEvery, which source a
// packet from the listen port to each peer's endpoint would carry, and
// records the clients it would not reach from the VIP: no route to them
// (a host that cannot reach a client cannot take it over either), or
// another source. The warnings are those of the last full pass over the
// peers (routePass); a change is logged once.
func (u *unit) checkRoutes(ctx context.Context) {
	t := time.NewTimer(tick.Until(time.Now(), routeCheckEvery))
	defer t.Stop()
	var last string
	var rp routePass
	var lookups rtnl.Kept // one socket for every lookup
	defer lookups.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			t.Reset(tick.Until(time.Now(), routeCheckEvery))
		}
		port := u.port()
		u.mu.Lock()
		dev := u.dev
		u.mu.Unlock()
		if port == 0 || dev == nil || !u.keeper.State().InPlace() {
			continue
		}
		warns, done := rp.round(dev.Peers, func(p wireguard.Peer, ep netip.AddrPort) string {
			want := u.cfg.VIP4
			if ep.Addr().Is6() {
				want = u.cfg.VIP6
			}
			if !want.IsValid() {
				return ""
			}
			src, err := routeSource(&lookups, ep, port)
			switch {
			case err != nil:
				return fmt.Sprintf("client %s (peer %s…): %v", ep, p.Key.String()[:8], err)
			case src != want:
				return fmt.Sprintf("client %s (peer %s…): packets would leave from %s, not the VIP %s", ep, p.Key.String()[:8], src, want)
			}
			return ""
		})
		if !done {
			continue
		}
		u.mu.Lock()
		u.routeWarnings = warns
		u.mu.Unlock()
		if s := fmt.Sprint(warns); s != last {
			last = s
			if len(warns) > 0 {
				u.log.Warn("VIP-sourcing does not cover every client", "clients", warns)
			}
		}
	}
}

// routeSource asks the kernel on k's socket which source a packet from
// port to the client at ep would leave with; an answer of no route keeps
// the socket, any other failure has the next lookup open another.
func routeSource(k *rtnl.Kept, ep netip.AddrPort, port int) (src netip.Addr, err error) {
	err = k.Use(func(c *rtnl.Conn) (err error) {
		src, err = vipsrc.Source(c, ep, port)
		return err
	}, vipsrc.ErrNoRoute)
	return src, err
}

// routePass goes through the peers' endpoints a round at a time: each
// address once per pass, at most routeChecksPerRound a round, at most
// maxRouteWarnings warnings kept. It does no I/O.
type routePass struct {
	next  int                 // the peer the next round starts at
	warns []string            // of the pass in progress
	seen  map[netip.Addr]bool // addresses checked in this pass
}

// round checks the next addresses with check ("" for fine, else the
// warning) and returns the pass's warnings when the round ended it.
func (rp *routePass) round(peers []wireguard.Peer, check func(wireguard.Peer, netip.AddrPort) string) ([]string, bool) {
	if rp.seen == nil {
		rp.seen = map[netip.Addr]bool{}
	}
	checked, i := 0, rp.next
	for ; i < len(peers) && checked < routeChecksPerRound; i++ {
		p := peers[i]
		ep := p.Endpoint
		if !ep.IsValid() || ep.Addr().IsLoopback() || rp.seen[ep.Addr()] {
			continue
		}
		rp.seen[ep.Addr()] = true
		checked++
		if len(rp.warns) < maxRouteWarnings {
			if w := check(p, ep); w != "" {
				rp.warns = append(rp.warns, w)
			}
		}
	}
	if rp.next = i; i < len(peers) {
		return nil, false
	}
	warns := rp.warns
	rp.next, rp.warns = 0, nil
	clear(rp.seen)
	return warns, true
}
