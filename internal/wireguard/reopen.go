package wireguard

import (
	"errors"
	"os"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// reopening is a wgctrl client that opens itself again when it cannot find
// a device that exists as a kernel WireGuard link.
//
// wgctrl decides once, in wgctrl.New, whether to use the kernel's generic
// netlink interface: if the family "wireguard" is not there yet (wgbird
// started before wireguard.ko was loaded, and the kernel could not load
// it on demand), the client only ever looks for wireguard-go's UAPI
// sockets, and every later read of a kernel device says "not found".
// reopening notices exactly that case, a read that finds nothing twice
// while rtnetlink shows a link of that name of kind wireguard, and
// replaces the client with a new one, which sees the module.
type reopening struct {
	open       func() (client, error)
	kernelLink func(name string) bool

	mu     sync.Mutex
	c      client
	closed bool
}

var _ client = (*reopening)(nil)

func newReopening(open func() (client, error), kernelLink func(string) bool) (*reopening, error) {
	c, err := open()
	if err != nil {
		return nil, err
	}
	return &reopening{open: open, kernelLink: kernelLink, c: c}, nil
}

// openWgctrl opens a wgctrl client that reopens itself as described above.
func openWgctrl() (client, error) {
	return newReopening(func() (client, error) { return wgctrl.New() }, isKernelLink)
}

func isKernelLink(name string) bool {
	l, err := netlink.LinkByName(name)
	return err == nil && l.Type() == "wireguard"
}

func (r *reopening) current() client {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.c
}

func (r *reopening) Device(name string) (*wgtypes.Device, error) {
	c := r.current()
	dev, err := c.Device(name)
	if !errors.Is(err, os.ErrNotExist) || !r.kernelLink(name) {
		return dev, err
	}
	// The link may have been created between the read and the look-up: a
	// client with a kernel backend finds it now.
	if dev, err = c.Device(name); !errors.Is(err, os.ErrNotExist) {
		return dev, err
	}
	nc, oerr := r.open()
	if oerr != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		nc.Close()
		return nil, err
	}
	if r.c != c { // another read replaced it meanwhile
		r.mu.Unlock()
		nc.Close()
		return r.current().Device(name)
	}
	r.c = nc
	r.mu.Unlock()
	// The old client has no kernel backend; its userspace backend dials
	// per read and holds nothing a concurrent read could lose.
	c.Close()
	return nc.Device(name)
}

func (r *reopening) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return r.c.Close()
}
