package inotify

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// next returns the next events, failing the test after a second.
func next(t *testing.T, w *Watcher) []Event {
	t.Helper()
	type res struct {
		evs []Event
		err error
	}
	ch := make(chan res, 1)
	go func() {
		evs, err := w.Next(make([]byte, 4096))
		ch <- res{evs, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Next: %v", r.err)
		}
		return r.evs
	case <-time.After(time.Second):
		t.Fatal("no event within 1 s")
		return nil
	}
}

func TestOpenAndCreate(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "bird.conf")
	other := filepath.Join(dir, "other.conf")
	sock := filepath.Join(dir, "bird.ctl")
	for _, f := range []string{conf, other} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	w, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Add(conf, Open); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(sock, Create); err != nil {
		t.Fatal(err)
	}

	// Another file's open is not reported; the watched one's is, once
	// (its close and read are not asked for).
	if _, err := os.ReadFile(other); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile(conf); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Event{{Path: conf, Mask: Open}}, next(t, w)); diff != "" {
		t.Errorf("after reading both files (-want +got):\n%s", diff)
	}

	// A socket bound at the path is a Create; the second Add for the same
	// directory kept the first file's mask.
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if diff := cmp.Diff([]Event{{Path: sock, Mask: Create}}, next(t, w)); diff != "" {
		t.Errorf("after binding the socket (-want +got):\n%s", diff)
	}

	// A file renamed over the watched one is still watched by name.
	tmp := filepath.Join(dir, "bird.conf.new")
	if err := os.WriteFile(tmp, []byte("y"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, conf); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile(conf); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Event{{Path: conf, Mask: Open}}, next(t, w)); diff != "" {
		t.Errorf("after a rename over it (-want +got):\n%s", diff)
	}
}

func TestCloseEndsNext(t *testing.T) {
	w, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(filepath.Join(t.TempDir(), "f"), Open); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := w.Next(make([]byte, 4096)); done <- err }()
	time.Sleep(20 * time.Millisecond)
	w.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("Next after Close: %v, want os.ErrClosed", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Next still waiting 1 s after Close")
	}
}

func TestDirectoryGone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	w, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Add(filepath.Join(dir, "f"), Open); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Next(make([]byte, 4096)); err == nil {
		t.Error("Next after the directory was removed: no error")
	}
	if err := w.Add(filepath.Join(t.TempDir(), "missing", "f"), Open); err == nil {
		t.Error("Add in a missing directory: no error")
	}
}

func event(wd int32, mask uint32, name string, pad int) []byte {
	b := make([]byte, unix.SizeofInotifyEvent+len(name)+pad)
	binary.NativeEndian.PutUint32(b[0:], uint32(wd))
	binary.NativeEndian.PutUint32(b[4:], mask)
	binary.NativeEndian.PutUint32(b[12:], uint32(len(name)+pad))
	copy(b[unix.SizeofInotifyEvent:], name)
	return b
}

func TestParse(t *testing.T) {
	b := append(event(1, Open, "bird.conf", 7), event(2, Create, "", 0)...)
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []Raw{{Wd: 1, Mask: Open, Name: "bird.conf"}, {Wd: 2, Mask: Create}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
	for name, b := range map[string][]byte{
		"short header":      b[:10],
		"name past the end": event(1, Open, "bird.conf", 7)[:20],
	} {
		if _, err := Parse(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func FuzzParseEvents(f *testing.F) {
	f.Add(event(1, Open, "bird.conf", 7))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := Parse(b)
		if err == nil {
			n := 0
			for _, e := range evs {
				n += len(e.Name)
			}
			if n > len(b) {
				t.Fatalf("names of %d bytes from %d", n, len(b))
			}
		}
	})
}
