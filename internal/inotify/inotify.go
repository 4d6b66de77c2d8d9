package inotify

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// What a watch reports about its file.
const (
	Open   = unix.IN_OPEN   // the file was opened
	Create = unix.IN_CREATE // the file was created (or bound, for a socket)
)

// Event says that something happened to a watched file.
type Event struct {
	Path string // as given to Add
	Mask uint32 // Open or Create
}

// Watcher reports events on the files added to it. It watches each file's
// directory, so a file that does not exist yet, or is replaced (an editor
// renames a new copy over it, BIRD binds its socket again), is still seen.
type Watcher struct {
	f *os.File

	mu    sync.Mutex
	dirs  map[string]int32             // watch descriptor by directory
	files map[int32]map[string]watched // by watch descriptor, then name
}

type watched struct {
	path string
	mask uint32
}

// New returns a Watcher with nothing to watch yet.
func New() (*Watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("creating inotify instance: %w", err)
	}
	// A non-blocking descriptor makes os.File wait in the netpoller, so
	// Close ends a Next in progress.
	return &Watcher{f: os.NewFile(uintptr(fd), "inotify"), dirs: map[string]int32{}, files: map[int32]map[string]watched{}}, nil
}

// Add reports mask's events (Open, Create or both) on path from now on.
// Its directory must exist.
func (w *Watcher) Add(path string, mask uint32) error {
	dir, name := filepath.Split(filepath.Clean(path))
	dir = filepath.Clean(dir)
	w.mu.Lock()
	defer w.mu.Unlock()
	// One watch per directory: adding it again replaces its mask, so the
	// mask is the union of its files' masks.
	all := mask
	if wd, ok := w.dirs[dir]; ok {
		for n, f := range w.files[wd] {
			if n != name {
				all |= f.mask
			}
		}
	}
	var d int
	err := w.control(func(fd int) error {
		var err error
		d, err = unix.InotifyAddWatch(fd, dir, all|unix.IN_ONLYDIR)
		return err
	})
	if err != nil {
		return fmt.Errorf("watching %s: %w", dir, err)
	}
	w.dirs[dir] = int32(d)
	if w.files[int32(d)] == nil {
		w.files[int32(d)] = map[string]watched{}
	}
	w.files[int32(d)][name] = watched{path: path, mask: mask}
	return nil
}

func (w *Watcher) control(f func(fd int) error) error {
	rc, err := w.f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// ErrOverflow is returned by Next when the kernel dropped events: the
// caller has missed some and should look for itself.
var ErrOverflow = errors.New("inotify queue overflowed: events were lost")

// Next waits for the next events on the watched files and returns them.
// It returns an error after Close, on ErrOverflow, and when a watched
// directory is gone.
func (w *Watcher) Next(buf []byte) ([]Event, error) {
	if len(buf) < unix.SizeofInotifyEvent+unix.NAME_MAX+1 {
		return nil, errors.New("inotify: buffer too small")
	}
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			return nil, fmt.Errorf("reading inotify events: %w", err)
		}
		raw, err := Parse(buf[:n])
		if err != nil {
			return nil, err
		}
		var evs []Event
		w.mu.Lock()
		for _, r := range raw {
			if r.Mask&unix.IN_Q_OVERFLOW != 0 {
				w.mu.Unlock()
				return nil, ErrOverflow
			}
			names, ok := w.files[r.Wd]
			if r.Mask&(unix.IN_IGNORED|unix.IN_DELETE_SELF|unix.IN_UNMOUNT) != 0 && ok {
				var dir string
				for d, wd := range w.dirs {
					if wd == r.Wd {
						dir = d
					}
				}
				w.mu.Unlock()
				return nil, fmt.Errorf("watched directory %s is gone", dir)
			}
			if f, ok := names[r.Name]; ok && r.Mask&f.mask != 0 {
				evs = append(evs, Event{Path: f.path, Mask: r.Mask & f.mask})
			}
		}
		w.mu.Unlock()
		if len(evs) > 0 {
			return evs, nil
		}
	}
}

// Close stops watching and ends a Next in progress.
func (w *Watcher) Close() error { return w.f.Close() }

// Raw is one event as the kernel reports it.
type Raw struct {
	Wd   int32
	Mask uint32
	Name string // the file's name in the watched directory, or ""
}

// Parse splits what a read of an inotify descriptor returned into events.
// The kernel returns only whole events; anything else is an error.
func Parse(b []byte) ([]Raw, error) {
	var out []Raw
	for len(b) > 0 {
		if len(b) < unix.SizeofInotifyEvent {
			return out, fmt.Errorf("inotify: %d bytes left, shorter than an event", len(b))
		}
		// struct inotify_event: wd, mask, cookie, len, then len bytes of
		// NUL-padded name.
		wd := int32(binary.NativeEndian.Uint32(b[0:4]))
		mask := binary.NativeEndian.Uint32(b[4:8])
		n := binary.NativeEndian.Uint32(b[12:16])
		if n > unix.PathMax || int(n) > len(b)-unix.SizeofInotifyEvent {
			return out, fmt.Errorf("inotify: event name of %d bytes runs past the %d read", n, len(b))
		}
		end := unix.SizeofInotifyEvent + int(n)
		name := b[unix.SizeofInotifyEvent:end]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		out = append(out, Raw{Wd: wd, Mask: mask, Name: string(name)})
		b = b[end:]
	}
	return out, nil
}
