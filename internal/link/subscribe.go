package link

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wgbird/wgbird/internal/rtnl"
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

// updateBuffer is the capacity of the channel the socket's reader
// delivers into.
const updateBuffer = 64

// Subscribe reports link and address updates in the current network
// namespace on events until ctx is done. It never blocks on events: when
// the channel is full the event is dropped, and the consumer relies on
// coalescing and its periodic poll. A broken subscription (lost
// notifications, rtnl.ErrLost after the socket's queue overflowed, or a
// failed read) is logged and re-established with backoff, after which an
// Event with Index 0 asks the consumer to re-check everything it may have
// missed.
//
// Subscribe opens its netlink socket (rtnl) from the calling goroutine,
// so it belongs to the network namespace of the calling OS thread. When
// it returns, its socket is closed and its goroutines have ended.
func Subscribe(ctx context.Context, log *slog.Logger, events chan<- Event) {
	subscribe(ctx, log, events, openNetlink, backoff{min: minBackoff, max: maxBackoff, reset: resetAfter})
}

// subscription is one open subscription to link and address changes.
type subscription struct {
	updates <-chan Event
	errs    <-chan error
	// stop closes the socket and waits until its reader has ended.
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
		case e, ok := <-sub.updates:
			if !ok {
				return errors.New("update channel closed")
			}
			send(events, e)
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

// openNetlink subscribes to link and address updates: one rtnetlink
// socket and one goroutine reading it through the netpoller (netlink's
// LinkSubscribe and AddrSubscribe took two goroutines each, one of them
// parked on a 64 KiB stack array).
func openNetlink() (*subscription, error) {
	sock, err := rtnl.Open(rtnl.Links | rtnl.Addrs)
	if err != nil {
		return nil, fmt.Errorf("subscribing to link and address updates: %w", err)
	}
	updates := make(chan Event, updateBuffer)
	errs := make(chan error, 1)
	quit, done := make(chan struct{}), make(chan struct{})
	deliver := func(e Event) bool {
		select {
		case updates <- e:
			return true
		case <-quit:
			return false
		}
	}
	go func() {
		defer close(done)
		for {
			msgs, err := sock.Read()
			switch {
			case errors.Is(err, os.ErrClosed):
				return
			case err != nil:
				errs <- err // lost notifications too: logged, and subscribed anew
				return
			}
			for _, m := range msgs {
				if e, ok := event(m); ok && !deliver(e) {
					return
				}
			}
		}
	}()
	return &subscription{updates: updates, errs: errs, stop: func() {
		close(quit)
		sock.Close()
		<-done
	}}, nil
}

// event is what a notification says: a link's index and name, an
// address's link index, or for a message that does not parse Index 0
// (re-check everything). Other messages are no event.
func event(m syscall.NetlinkMessage) (Event, bool) {
	switch m.Header.Type {
	case unix.RTM_NEWLINK, unix.RTM_DELLINK:
		if i, name, ok := rtnl.Link(m); ok {
			return Event{Index: i, Name: name}, true
		}
		return Event{}, true
	case unix.RTM_NEWADDR, unix.RTM_DELADDR:
		if i, ok := rtnl.Addr(m); ok {
			return Event{Index: i}, true
		}
		return Event{}, true
	}
	return Event{}, false
}
