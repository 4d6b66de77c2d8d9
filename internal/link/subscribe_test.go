package link

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/wgbird/wgbird/internal/rtnl/rtnltest"
)

// fakeSub is one subscription handed out by fakeNetlink.
type fakeSub struct {
	updates chan Event
	errs    chan error
	stopped chan struct{}
}

// fakeNetlink opens fake subscriptions; the first fail opens fail.
type fakeNetlink struct {
	mu   sync.Mutex
	fail int
	subs chan *fakeSub
}

func newFakeNetlink(fail int) *fakeNetlink {
	return &fakeNetlink{fail: fail, subs: make(chan *fakeSub, 100)}
}

func (f *fakeNetlink) open() (*subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		return nil, errors.New("subscribing to link updates: no buffer space available")
	}
	s := &fakeSub{
		updates: make(chan Event), // unbuffered: a send returns once run took it
		errs:    make(chan error, 1),
		stopped: make(chan struct{}),
	}
	f.subs <- s
	return &subscription{updates: s.updates, errs: s.errs, stop: func() { close(s.stopped) }}, nil
}

func (f *fakeNetlink) next(t *testing.T) *fakeSub {
	t.Helper()
	select {
	case s := <-f.subs:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no subscription opened within 5s")
		return nil
	}
}

// record is one captured log record.
type record struct {
	Msg   string
	Attrs map[string]string
}

// captureHandler records log records for assertions.
type captureHandler struct {
	mu      sync.Mutex
	records []record
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *captureHandler) WithGroup(string) slog.Handler            { return h }
func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	rec := record{Msg: r.Message, Attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, rec)
	return nil
}

func (h *captureHandler) get() []record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]record(nil), h.records...)
}

func linkUpdate(index int, name string) Event { return Event{Index: index, Name: name} }

func expectEvent(t *testing.T, events <-chan Event, want Event) {
	t.Helper()
	select {
	case got := <-events:
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("event (-want +got):\n%s", diff)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no event within 5s, want %+v", want)
	}
}

func expectStopped(t *testing.T, s *fakeSub) {
	t.Helper()
	select {
	case <-s.stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("subscription not stopped within 5s")
	}
}

// start runs subscribe in the background; the returned func cancels it and
// waits for it to return.
func start(t *testing.T, f *fakeNetlink, events chan Event, h *captureHandler, b backoff) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		subscribe(ctx, slog.New(h), events, f.open, b)
	}()
	stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("subscribe did not return within 5s of cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

var fastBackoff = backoff{min: time.Millisecond, max: 4 * time.Millisecond, reset: time.Hour}

func TestSubscribeForwards(t *testing.T) {
	f := newFakeNetlink(0)
	events := make(chan Event, 10)
	h := &captureHandler{}
	stop := start(t, f, events, h, fastBackoff)

	s := f.next(t)
	s.updates <- linkUpdate(3, "wg0")
	expectEvent(t, events, Event{Index: 3, Name: "wg0"})
	s.updates <- Event{Index: 3}
	expectEvent(t, events, Event{Index: 3})

	stop()
	expectStopped(t, s)
	if recs := h.get(); len(recs) != 0 {
		t.Errorf("log records after a clean stop: %+v, want none", recs)
	}
}

func TestSubscribeNeverBlocks(t *testing.T) {
	f := newFakeNetlink(0)
	events := make(chan Event, 1)
	start(t, f, events, &captureHandler{}, fastBackoff)

	s := f.next(t)
	// Nobody reads events. Every send on the unbuffered fake channel
	// completes only when Subscribe took the update, so these would hang
	// if it blocked on the full events channel.
	for i := range 20 {
		select {
		case s.updates <- linkUpdate(i+1, "wg0"):
		case <-time.After(5 * time.Second):
			t.Fatalf("update %d not taken within 5s: Subscribe blocked on a full channel", i)
		}
	}
	expectEvent(t, events, Event{Index: 1, Name: "wg0"}) // the first; the rest were dropped
}

func TestSubscribeResubscribes(t *testing.T) {
	f := newFakeNetlink(0)
	events := make(chan Event, 10)
	h := &captureHandler{}
	start(t, f, events, h, fastBackoff)

	// The update channel closes: a new subscription, and a resync event.
	s1 := f.next(t)
	close(s1.updates)
	expectStopped(t, s1)
	s2 := f.next(t)
	expectEvent(t, events, Event{})

	// A failed read: again.
	s2.errs <- errors.New("reading rtnetlink notifications: bad file descriptor")
	expectStopped(t, s2)
	s3 := f.next(t)
	expectEvent(t, events, Event{})

	// And once more.
	close(s3.updates)
	expectStopped(t, s3)
	s4 := f.next(t)
	expectEvent(t, events, Event{})
	s4.updates <- linkUpdate(5, "wg1")
	expectEvent(t, events, Event{Index: 5, Name: "wg1"})

	want := []record{
		{Msg: "netlink subscription broken, re-subscribing", Attrs: map[string]string{"err": "update channel closed", "backoff": "1ms"}},
		{Msg: "netlink subscription broken, re-subscribing", Attrs: map[string]string{"err": "reading rtnetlink notifications: bad file descriptor", "backoff": "2ms"}},
		{Msg: "netlink subscription broken, re-subscribing", Attrs: map[string]string{"err": "update channel closed", "backoff": "4ms"}},
	}
	if diff := cmp.Diff(want, h.get()); diff != "" {
		t.Errorf("log records (-want +got):\n%s", diff)
	}
}

func TestSubscribeBackoff(t *testing.T) {
	f := newFakeNetlink(4) // four failed opens, then one that works
	events := make(chan Event, 10)
	h := &captureHandler{}
	start(t, f, events, h, backoff{min: time.Millisecond, max: 4 * time.Millisecond, reset: 50 * time.Millisecond})

	s := f.next(t)
	expectEvent(t, events, Event{})
	time.Sleep(60 * time.Millisecond) // longer than reset: the backoff starts over
	close(s.updates)
	f.next(t)

	var got []string
	for _, r := range h.get() {
		got = append(got, r.Attrs["backoff"])
	}
	want := []string{"1ms", "2ms", "4ms", "4ms", "1ms"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("backoff delays (-want +got):\n%s", diff)
	}
}

// nlmsg parses one netlink message of type typ with body, as the socket's
// Read gives it.
func nlmsg(t *testing.T, typ uint16, body []byte) syscall.NetlinkMessage {
	t.Helper()
	msgs, err := syscall.ParseNetlinkMessage(rtnltest.Message(typ, body))
	if err != nil || len(msgs) != 1 {
		t.Fatalf("ParseNetlinkMessage: %d, %v", len(msgs), err)
	}
	return msgs[0]
}

func TestEvent(t *testing.T) {
	ifi, ifa := rtnltest.Link(4, "wg0"), rtnltest.Addr(4)
	for _, tt := range []struct {
		name   string
		m      syscall.NetlinkMessage
		want   Event
		wantOK bool
	}{
		{"new link", nlmsg(t, unix.RTM_NEWLINK, ifi), Event{Index: 4, Name: "wg0"}, true},
		{"link gone", nlmsg(t, unix.RTM_DELLINK, ifi), Event{Index: 4, Name: "wg0"}, true},
		{"address", nlmsg(t, unix.RTM_NEWADDR, ifa), Event{Index: 4}, true},
		{"address gone", nlmsg(t, unix.RTM_DELADDR, ifa), Event{Index: 4}, true},
		{"short link message: re-check all", nlmsg(t, unix.RTM_NEWLINK, ifi[:6]), Event{}, true},
		{"short address message: re-check all", nlmsg(t, unix.RTM_NEWADDR, ifa[:2]), Event{}, true},
		{"a route", nlmsg(t, unix.RTM_NEWROUTE, make([]byte, unix.SizeofRtMsg)), Event{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := event(tt.m)
			if ok != tt.wantOK || got != tt.want {
				t.Errorf("event = %+v, %v; want %+v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
