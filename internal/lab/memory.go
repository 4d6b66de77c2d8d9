package lab

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The lab's wgbirds run with --pprof: their Go runtime profiles are served
// on the control socket, so a soak can measure the heap after a forced GC
// and keep heap profiles to compare (go tool pprof -base A B).

// HeapStats are a wgbird's Go heap figures right after a forced GC, from
// the runtime.MemStats its text heap profile ends with.
type HeapStats struct {
	// Inuse is HeapInuse: bytes in spans that hold at least one object,
	// live objects plus the free space of those spans. What a leak grows.
	Inuse int64
	// Alloc is HeapAlloc: bytes of live objects (after the GC).
	Alloc int64
	// Sys is HeapSys: heap address space obtained from the OS; Released
	// (HeapReleased) the part of it returned to the OS since.
	Sys, Released int64
	// Objects is HeapObjects; NumGC the GCs so far.
	Objects, NumGC int64
	// RuntimeSys is Sys: all the memory the Go runtime obtained from the
	// OS (heap, stacks, its own structures), released parts included.
	RuntimeSys int64
}

// WgbirdHeap forces a GC in server's wgbird and returns its heap figures
// (GET /debug/pprof/heap?gc=1&debug=1 on the control socket). It asks
// twice and reads the second answer: objects in a sync.Pool survive one
// GC (as its victim cache), and the first profile's own buffers are garbage
// by the second; what is left is what wgbird holds.
func (l *Lab) WgbirdHeap(ctx context.Context, server string) (HeapStats, error) {
	if _, err := l.wgbirdPprof(ctx, server, "heap?gc=1&debug=1"); err != nil {
		return HeapStats{}, err
	}
	text, err := l.wgbirdPprof(ctx, server, "heap?gc=1&debug=1")
	if err != nil {
		return HeapStats{}, err
	}
	h, err := parseHeapProfile(string(text))
	if err != nil {
		return h, fmt.Errorf("wgbird's heap profile on %s: %w", server, err)
	}
	return h, nil
}

// SaveWgbirdHeapProfile forces a GC in server's wgbird and writes its heap
// profile (pprof's protobuf, gzipped) to path.
func (l *Lab) SaveWgbirdHeapProfile(ctx context.Context, server, path string) error {
	b, err := l.wgbirdPprof(ctx, server, "heap?gc=1")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// wgbirdPprof GETs /debug/pprof/NAME from server's wgbird control socket.
// Unix sockets are found by path: no namespace needed.
func (l *Lab) wgbirdPprof(ctx context.Context, server, name string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sock := l.ControlSocket(server)
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://wgbird/debug/pprof/"+name, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading wgbird's %s profile on %s: %w", name, server, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading wgbird's %s profile on %s: %w", name, server, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading wgbird's %s profile on %s: %s (does it run with --pprof?)", name, server, resp.Status)
	}
	return b, nil
}

// parseHeapProfile reads the runtime.MemStats lines ("# HeapInuse = 123")
// at the end of a text heap profile (?debug=1).
func parseHeapProfile(text string) (HeapStats, error) {
	var h HeapStats
	fields := map[string]*int64{
		"HeapInuse": &h.Inuse, "HeapAlloc": &h.Alloc, "HeapSys": &h.Sys,
		"HeapReleased": &h.Released, "HeapObjects": &h.Objects, "NumGC": &h.NumGC,
		"Sys": &h.RuntimeSys,
	}
	seen := 0
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "# ")
		if !ok {
			continue
		}
		k, v, ok := strings.Cut(line, " = ")
		p := fields[k]
		if !ok || p == nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return h, fmt.Errorf("parsing %q: %w", line, err)
		}
		*p = n
		delete(fields, k)
		seen++
	}
	if err := sc.Err(); err != nil {
		return h, err
	}
	if len(fields) > 0 {
		missing := slices.Sorted(maps.Keys(fields))
		return h, fmt.Errorf("no runtime.MemStats %s in the heap profile (%d found)", strings.Join(missing, ", "), seen)
	}
	return h, nil
}
