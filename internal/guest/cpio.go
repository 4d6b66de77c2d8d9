package guest

import (
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Archive is an initramfs being built: a newc cpio archive held in memory
// until Write. Paths are relative to the guest's root ("bin/busybox");
// missing parent directories are added.
type Archive struct {
	entries map[string]entry
}

type entry struct {
	mode fs.FileMode // fs.ModeDir, fs.ModeSymlink or a regular file's permissions
	data []byte      // file contents or symlink target
}

// NewArchive returns an empty archive.
func NewArchive() *Archive { return &Archive{entries: make(map[string]entry)} }

func clean(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

func (a *Archive) parents(p string) {
	for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
		if _, ok := a.entries[d]; !ok {
			a.entries[d] = entry{mode: fs.ModeDir | 0o755}
		}
	}
}

// Dir adds a directory.
func (a *Archive) Dir(p string, perm fs.FileMode) {
	p = clean(p)
	a.parents(p)
	a.entries[p] = entry{mode: fs.ModeDir | perm.Perm()}
}

// File adds a regular file, replacing any entry of that path.
func (a *Archive) File(p string, perm fs.FileMode, data []byte) {
	p = clean(p)
	a.parents(p)
	a.entries[p] = entry{mode: perm.Perm(), data: data}
}

// Symlink adds a symbolic link p pointing to target.
func (a *Archive) Symlink(p, target string) {
	p = clean(p)
	a.parents(p)
	a.entries[p] = entry{mode: fs.ModeSymlink | 0o777, data: []byte(target)}
}

// Has reports whether p is in the archive.
func (a *Archive) Has(p string) bool {
	_, ok := a.entries[clean(p)]
	return ok
}

// Write writes the archive gzip-compressed, parents before children, owned
// by root.
func (a *Archive) Write(w io.Writer) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(a.entries))
	for n := range a.entries {
		names = append(names, n)
	}
	sort.Strings(names) // "a" sorts before "a/b"
	for i, n := range names {
		e := a.entries[n]
		if err := writeEntry(zw, uint32(i+1), n, e); err != nil {
			return fmt.Errorf("writing %s to the initramfs: %w", n, err)
		}
	}
	if err := writeEntry(zw, 0, "TRAILER!!!", entry{}); err != nil {
		return err
	}
	return zw.Close()
}

// newc mode bits.
const (
	cpioDir     = 0o040000
	cpioFile    = 0o100000
	cpioSymlink = 0o120000
)

func writeEntry(w io.Writer, ino uint32, name string, e entry) error {
	mode := uint32(e.mode.Perm())
	nlink := uint32(1)
	switch {
	case name == "TRAILER!!!":
		mode = 0
	case e.mode&fs.ModeDir != 0:
		mode |= cpioDir
		nlink = 2
	case e.mode&fs.ModeSymlink != 0:
		mode |= cpioSymlink
	default:
		mode |= cpioFile
	}
	// magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize (with its NUL), check.
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, len(e.data), 0, 0, 0, 0, len(name)+1, 0)
	buf := make([]byte, 0, len(hdr)+len(name)+8)
	buf = append(buf, hdr...)
	buf = append(buf, name...)
	buf = append(buf, 0)
	buf = pad4(buf)
	if _, err := w.Write(buf); err != nil {
		return err
	}
	if len(e.data) == 0 {
		return nil
	}
	if _, err := w.Write(e.data); err != nil {
		return err
	}
	_, err := w.Write(make([]byte, (4-len(e.data)%4)%4))
	return err
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
