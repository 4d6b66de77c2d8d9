package rtnl

import (
	"errors"
	"sync"
	"time"
)

// Kept is a Conn kept open from one use to the next: dialed at the first
// Use, in the network namespace of that thread, closed after a Use that
// failed (but for the errors the caller keeps it through, such as the
// kernel's "no route"), and dialed again at the next. It is safe for
// concurrent use; uses take turns.
type Kept struct {
	// Timeout bounds each send and receive of the Conn (see Dial);
	// DefaultTimeout when zero.
	Timeout time.Duration

	mu sync.Mutex
	c  *Conn
}

// DefaultTimeout is a Kept's Timeout when it sets none.
const DefaultTimeout = 2 * time.Second

// Use calls f with the kept Conn, dialing one first when there is none,
// and returns f's error or Dial's. When f fails with an error that is none
// of keep (errors.Is), the Conn is closed and the next Use dials another.
func (k *Kept) Use(f func(*Conn) error, keep ...error) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.c == nil {
		t := k.Timeout
		if t == 0 {
			t = DefaultTimeout
		}
		c, err := Dial(t)
		if err != nil {
			return err
		}
		k.c = c
	}
	err := f(k.c)
	if err == nil {
		return nil
	}
	for _, e := range keep {
		if errors.Is(err, e) {
			return err
		}
	}
	k.c.Close()
	k.c = nil
	return err
}

// Close closes the kept Conn, if any; a later Use dials another.
func (k *Kept) Close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.c != nil {
		k.c.Close()
		k.c = nil
	}
}
