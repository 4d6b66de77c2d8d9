package link

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/vishvananda/netlink"
)

// Event says that something about a link changed.
type Event struct {
	// Index is the link's index. Index 0 means that updates may have been
	// lost (the subscription was re-established): re-check every link.
	Index int
	// Name is the link's name for link updates and "" for address
	// updates, which carry only the index.
	Name string
}

// Backoff between attempts to re-establish a broken subscription: it
// starts at minBackoff, doubles up to maxBackoff and starts over once a
// subscription has lasted resetAfter.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	resetAfter = 30 * time.Second
)

// updateBuffer is the capacity of the channels netlink delivers into.
const updateBuffer = 64

// Subscribe reports link and address updates in the current network
// namespace on events until ctx is done. It never blocks on events: when
// the channel is full the event is dropped, and the consumer relies on
// coalescing and its periodic poll. A broken subscription (a netlink
// error, e.g. ENOBUFS after an overflow, or a closed update channel) is
// logged and re-established with backoff, after which an Event with Index
// 0 asks the consumer to re-check everything it may have missed.
//
// Subscribe opens its netlink sockets from the calling goroutine, so they
// belong to the network namespace of the calling OS thread. When it
// returns, its sockets are closed and all its goroutines, including
// netlink's, have ended.
func Subscribe(ctx context.Context, log *slog.Logger, events chan<- Event) {
	subscribe(ctx, log, events, openNetlink, backoff{min: minBackoff, max: maxBackoff, reset: resetAfter})
}

// subscription is one open pair of netlink subscriptions.
type subscription struct {
	links <-chan netlink.LinkUpdate
	addrs <-chan netlink.AddrUpdate
	errs  <-chan error
	// stop closes the sockets and waits until netlink's goroutines have
	// ended (it drains the update channels until netlink closes them).
	stop func()
}

type opener func() (*subscription, error)

type backoff struct {
	min, max, reset time.Duration
}

func subscribe(ctx context.Context, log *slog.Logger, events chan<- Event, open opener, b backoff) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	delay := b.min
	resync := false
	for {
		started := time.Now()
		err := run(ctx, events, open, resync)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) >= b.reset {
			delay = b.min
		}
		log.Warn("netlink subscription broken, re-subscribing", "err", err, "backoff", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, b.max)
		resync = true
	}
}

// run opens a subscription and forwards its updates until it breaks or ctx
// is done. It returns why the subscription ended.
func run(ctx context.Context, events chan<- Event, open opener, resync bool) error {
	sub, err := open()
	if err != nil {
		return err
	}
	defer sub.stop()
	if resync {
		send(events, Event{})
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-sub.errs:
			return err
		case u, ok := <-sub.links:
			if !ok {
				return errors.New("link update channel closed")
			}
			name := ""
			if u.Link != nil {
				name = u.Attrs().Name
			}
			send(events, Event{Index: int(u.Index), Name: name})
		case u, ok := <-sub.addrs:
			if !ok {
				return errors.New("address update channel closed")
			}
			send(events, Event{Index: u.LinkIndex})
		}
	}
}

// send delivers e unless events is full.
func send(events chan<- Event, e Event) {
	select {
	case events <- e:
	default:
	}
}

// openNetlink subscribes to link and address updates.
func openNetlink() (*subscription, error) {
	errs := make(chan error, 1)
	onError := func(err error) {
		select {
		case errs <- err:
		default: // one error is enough to re-subscribe
		}
	}

	links := make(chan netlink.LinkUpdate, updateBuffer)
	linksDone := make(chan struct{})
	err := netlink.LinkSubscribeWithOptions(links, linksDone, netlink.LinkSubscribeOptions{
		ErrorCallback: onError,
		ListExisting:  false,
	})
	if err != nil {
		return nil, fmt.Errorf("subscribing to link updates: %w", err)
	}

	addrs := make(chan netlink.AddrUpdate, updateBuffer)
	addrsDone := make(chan struct{})
	err = netlink.AddrSubscribeWithOptions(addrs, addrsDone, netlink.AddrSubscribeOptions{
		ErrorCallback: onError,
		ListExisting:  false,
	})
	if err != nil {
		close(linksDone)
		for range links {
		}
		return nil, fmt.Errorf("subscribing to address updates: %w", err)
	}

	return &subscription{
		links: links,
		addrs: addrs,
		errs:  errs,
		stop: func() {
			// Closing done makes netlink close the socket, which ends its
			// receive goroutine; that goroutine may be blocked sending an
			// update, so drain until it closes the channel.
			close(linksDone)
			close(addrsDone)
			for range links {
			}
			for range addrs {
			}
		},
	}, nil
}
