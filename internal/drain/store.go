package drain

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/wgbird/wgbird/internal/api"
)

// drainsSubdir is the directory under runtime_dir and state_dir that holds
// one SERVICE.json per drained service.
const drainsSubdir = "drains"

// Store keeps drains on disk so that they outlive the process: every drain
// under runtime_dir (kept across a wgbird restart, gone after a reboot) and
// persistent ones under state_dir as well (kept across a reboot). Every
// change is all or nothing: a file that cannot be written or removed is an
// error, and the files touched before it are put back.
type Store struct {
	runtimeDir string
	stateDir   string
}

// NewStore returns a store under the given directories. The drains
// subdirectories are created on the first write.
func NewStore(runtimeDir, stateDir string) *Store {
	return &Store{runtimeDir: runtimeDir, stateDir: stateDir}
}

// drainFile is what a drain file holds.
type drainFile struct {
	Service string `json:"service"`
	api.Drain
}

func (s *Store) runtimePath(service string) string {
	return filepath.Join(s.runtimeDir, drainsSubdir, service+".json")
}

func (s *Store) statePath(service string) string {
	return filepath.Join(s.stateDir, drainsSubdir, service+".json")
}

// checkName refuses a service name that is not a plain file name. The
// config already allows only [A-Za-z0-9_.-]; this guards the paths.
func checkName(service string) error {
	if service == "" || service == "." || service == ".." || strings.ContainsAny(service, "/\x00") {
		return fmt.Errorf("invalid service name %q", service)
	}
	return nil
}

// Save records d for every service: always in runtime_dir, and in
// state_dir when d.Persist; a non-persistent drain removes an older
// persistent one, so that the latest request decides. On error nothing
// has changed on disk.
func (s *Store) Save(services []string, d api.Drain) error {
	var ops []fileOp
	for _, name := range services {
		if err := checkName(name); err != nil {
			return err
		}
		b, err := json.MarshalIndent(drainFile{Service: name, Drain: d}, "", "  ")
		if err != nil {
			return fmt.Errorf("encoding drain of %q: %w", name, err)
		}
		b = append(b, '\n')
		if d.Persist {
			ops = append(ops, fileOp{path: s.statePath(name), data: b, write: true})
		} else {
			ops = append(ops, fileOp{path: s.statePath(name)})
		}
		ops = append(ops, fileOp{path: s.runtimePath(name), data: b, write: true})
	}
	return commit(ops)
}

// Remove deletes the drain files of every service. On error nothing has
// changed on disk.
func (s *Store) Remove(services []string) error {
	var ops []fileOp
	for _, name := range services {
		if err := checkName(name); err != nil {
			return err
		}
		ops = append(ops, fileOp{path: s.runtimePath(name)}, fileOp{path: s.statePath(name)})
	}
	return commit(ops)
}

// Loaded is a drain found on disk at start-up.
type Loaded struct {
	Service string
	Path    string
	Drain   api.Drain
	// Err is why the file could not be read. The service is drained
	// anyway (an operator asked for it), with a reason that says so.
	Err error
}

// Load returns the stored drain of each of services that has one: the
// runtime file if present, else the persistent one. Files of services
// not in services are returned as stray paths, for a warning.
func (s *Store) Load(services []string) (loaded []Loaded, stray []string) {
	for _, name := range services {
		if checkName(name) != nil {
			continue
		}
		for _, p := range []struct {
			path    string
			persist bool
		}{{s.runtimePath(name), false}, {s.statePath(name), true}} {
			l, ok := loadFile(name, p.path, p.persist)
			if ok {
				loaded = append(loaded, l)
				break
			}
		}
	}
	for _, dir := range []string{filepath.Join(s.runtimeDir, drainsSubdir), filepath.Join(s.stateDir, drainsSubdir)} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			name, ok := strings.CutSuffix(e.Name(), ".json")
			if !ok || strings.HasPrefix(e.Name(), ".") || slices.Contains(services, name) {
				continue
			}
			stray = append(stray, filepath.Join(dir, e.Name()))
		}
	}
	return loaded, stray
}

// loadFile reads one drain file; ok is false when it does not exist.
func loadFile(service, path string, persist bool) (Loaded, bool) {
	b, err := os.ReadFile(path)
	if absent(err) {
		return Loaded{}, false
	}
	l := Loaded{Service: service, Path: path}
	if err == nil {
		var f drainFile
		if err = json.Unmarshal(b, &f); err == nil && f.Service != service {
			err = fmt.Errorf("file is for service %q", f.Service)
		}
		if err == nil {
			l.Drain = f.Drain
			return l, true
		}
	}
	l.Err = fmt.Errorf("reading drain file %s: %w", path, err)
	l.Drain = api.Drain{
		Reason:  fmt.Sprintf("drain file %s unreadable (%v); undrain to clear", path, err),
		Since:   time.Now(),
		Persist: persist,
	}
	return l, true
}

// fileOp writes data to path (write) or removes path.
type fileOp struct {
	path  string
	data  []byte
	write bool
}

func (o fileOp) do() error {
	if o.write {
		return writeAtomic(o.path, o.data)
	}
	return removeSynced(o.path)
}

// commit applies ops in order. When one fails, the ones before it are
// undone, so the files are as before.
func commit(ops []fileOp) error {
	var undo []fileOp
	rollback := func(cause error) error {
		errs := []error{cause}
		for i := len(undo) - 1; i >= 0; i-- {
			if err := undo[i].do(); err != nil {
				errs = append(errs, fmt.Errorf("restoring %s: %w", undo[i].path, err))
			}
		}
		return errors.Join(errs...)
	}
	for _, op := range ops {
		old, err := os.ReadFile(op.path)
		exists := err == nil
		if err != nil && !absent(err) {
			return rollback(fmt.Errorf("reading %s: %w", op.path, err))
		}
		if !exists && !op.write {
			continue // nothing to remove
		}
		if err := op.do(); err != nil {
			return rollback(err)
		}
		undo = append(undo, fileOp{path: op.path, data: old, write: exists})
	}
	return nil
}

// writeAtomic replaces path with data: a temporary file in the same
// directory, synced, then renamed over path, and the directory synced, so
// that a crash leaves either the old file or the new one.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return syncDir(dir)
}

// removeSynced removes path (absent is fine) and syncs its directory.
func removeSynced(path string) error {
	err := os.Remove(path)
	if absent(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// absent reports whether err says a path does not exist (or cannot: a
// component of it is not a directory).
func absent(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
