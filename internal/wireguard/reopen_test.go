package wireguard

import (
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// backendClient is a wgctrl client as opened at one moment: it sees the
// kernel devices only if it was opened with a kernel backend. It records
// what it was asked.
type backendClient struct {
	id     int
	kernel bool
	links  map[string]bool // the kernel's WireGuard links, shared
	log    *[]string
}

func (c *backendClient) Device(name string) (*wgtypes.Device, error) {
	*c.log = append(*c.log, "read "+name+" with client "+string(rune('0'+c.id)))
	if c.kernel && c.links[name] {
		return &wgtypes.Device{Name: name, Type: wgtypes.LinuxKernel}, nil
	}
	return nil, os.ErrNotExist
}

func (c *backendClient) Close() error {
	*c.log = append(*c.log, "close client "+string(rune('0'+c.id)))
	return nil
}

// world is the machine: whether wireguard.ko is loaded, which kernel links
// exist, and every client opened.
type world struct {
	module bool
	links  map[string]bool
	opened int
	log    []string
}

func (w *world) open() (client, error) {
	w.opened++
	w.log = append(w.log, "open client "+string(rune('0'+w.opened)))
	return &backendClient{id: w.opened, kernel: w.module, links: w.links, log: &w.log}, nil
}

func (w *world) kernelLink(name string) bool { return w.links[name] }

func TestReopeningModuleLoadedLater(t *testing.T) {
	w := &world{links: map[string]bool{}}
	r, err := newReopening(w.open, w.kernelLink)
	if err != nil {
		t.Fatal(err)
	}
	// Not there at all: one read, no reopening.
	if _, err := r.Device("wg0"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Device(wg0) before the module = %v, want ErrNotExist", err)
	}
	// wg-quick loads the module and adds wg0 after wgbird started.
	w.module, w.links["wg0"] = true, true
	dev, err := r.Device("wg0")
	if err != nil || dev.Type != wgtypes.LinuxKernel {
		t.Fatalf("Device(wg0) after the module = %v, %v; want the kernel device", dev, err)
	}
	// From now on the new client answers alone.
	if _, err := r.Device("wg0"); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"open client 1",
		"read wg0 with client 1",
		"read wg0 with client 1", "read wg0 with client 1", // not found, a kernel link exists, not found again
		"open client 2", "close client 1", "read wg0 with client 2",
		"read wg0 with client 2",
		"close client 2",
	}
	if diff := cmp.Diff(want, w.log); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

// A wireguard-go device that is missing, or a kernel device that is gone,
// never reopens the client.
func TestReopeningOnlyForUnreadableKernelLinks(t *testing.T) {
	w := &world{module: true, links: map[string]bool{}}
	r, err := newReopening(w.open, w.kernelLink)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := r.Device("wg0"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Device(missing wg0) = %v, want ErrNotExist", err)
		}
	}
	w.links["wg0"] = true
	if _, err := r.Device("wg0"); err != nil {
		t.Fatal(err)
	}
	if w.opened != 1 {
		t.Errorf("clients opened = %d, want 1\n%q", w.opened, w.log)
	}
}

func TestReopeningAfterClose(t *testing.T) {
	w := &world{links: map[string]bool{"wg0": true}}
	r, err := newReopening(w.open, w.kernelLink)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	w.module = true
	if _, err := r.Device("wg0"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Device after Close = %v, want the old client's answer", err)
	}
	want := []string{"open client 1", "close client 1", "read wg0 with client 1", "read wg0 with client 1",
		"open client 2", "close client 2"}
	if diff := cmp.Diff(want, w.log); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}
