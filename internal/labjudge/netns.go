package labjudge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"

	"github.com/vishvananda/netns"
)

// InNS runs f on an OS thread switched into the network namespace h, in
// a goroutine of its own, so that the sockets f opens belong to that
// namespace for their whole life, whichever thread uses them later. A
// thread that cannot be switched back stays locked and the runtime
// discards it with the goroutine; that failure is returned too, after
// f's (whatever f opened is then the caller's to close).
func InNS(h netns.NsHandle, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("reading the current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(h); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering namespace %s: %w", h, err)
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leaving namespace %s: %w", h, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// InNamedNS runs f in the named network namespace, as InNS.
func InNamedNS(name string, f func() error) error {
	h, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("opening namespace %s: %w", name, err)
	}
	defer h.Close()
	if err := InNS(h, f); err != nil {
		return fmt.Errorf("in namespace %s: %w", name, err)
	}
	return nil
}

// DialInNS connects to addr from inside the named network namespace: the
// socket is created on an OS thread switched into it, and stays in it.
func DialInNS(ctx context.Context, name, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := InNamedNS(name, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		if c != nil {
			c.Close()
		}
		return nil, err
	}
	return c, nil
}
