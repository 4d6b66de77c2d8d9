package labsoak

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/wgbird/wgbird/internal/api"
	"github.com/wgbird/wgbird/internal/lab"
)

// The lab's wgbirds run with --pprof: their heap after a forced GC and
// their Go runtime profiles are served on the control socket, so a soak
// can measure the heap and keep heap profiles to compare (go tool pprof
// -base A B).

// HeapStats are a wgbird's Go heap right after two forced GCs, from
// GET /debug/memory on its control socket (api.MemoryReply), in bytes.
type HeapStats struct {
	// Live is the heap the GC found reachable: what wgbird holds.
	Live int64
	// Inuse is HeapInuse: bytes in spans that hold at least one object,
	// Live plus the free space of those spans.
	Inuse int64
	// Sys is HeapSys: heap address space obtained from the OS; Released
	// (HeapReleased) the part of it returned to the OS since.
	Sys, Released int64
	// Objects is HeapObjects; NumGC the GCs so far.
	Objects, NumGC int64
	// StackInuse is the goroutines' (and threads') stacks.
	StackInuse int64
	// RuntimeSys is all the memory the Go runtime obtained from the OS
	// (heap, stacks, its own structures), released parts included.
	RuntimeSys int64
}

// Idle is heap the runtime keeps for reuse: neither in use nor given back
// to the OS, so resident until the scavenger returns it.
func (h HeapStats) Idle() int64 { return h.Sys - h.Inuse - h.Released }

// WgbirdHeap forces two GCs in server's wgbird and returns its heap
// figures, read before the answer is built (GET /debug/memory).
func WgbirdHeap(ctx context.Context, l *lab.Lab, server string) (HeapStats, error) {
	b, err := wgbirdDebug(ctx, l, server, api.PathMemory)
	if err != nil {
		return HeapStats{}, err
	}
	var r api.MemoryReply
	if err := json.Unmarshal(b, &r); err != nil {
		return HeapStats{}, fmt.Errorf("wgbird's %s on %s: %w", api.PathMemory, server, err)
	}
	return HeapStats{
		Live: int64(r.HeapLive), Inuse: int64(r.HeapInuse), Sys: int64(r.HeapSys), Released: int64(r.HeapReleased),
		Objects: int64(r.HeapObjects), NumGC: int64(r.NumGC), StackInuse: int64(r.StackInuse), RuntimeSys: int64(r.Sys),
	}, nil
}

// SaveWgbirdHeapProfile forces a GC in server's wgbird and writes its heap
// profile (pprof's protobuf, gzipped) to path.
func SaveWgbirdHeapProfile(ctx context.Context, l *lab.Lab, server, path string) error {
	b, err := wgbirdDebug(ctx, l, server, api.PathPprof+"heap?gc=1")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// wgbirdDebug GETs path from server's wgbird control socket. Unix sockets
// are found by path: no namespace needed.
func wgbirdDebug(ctx context.Context, l *lab.Lab, server, path string) ([]byte, error) {
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://wgbird"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading wgbird's %s on %s: %w", path, server, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading wgbird's %s on %s: %w", path, server, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading wgbird's %s on %s: %s (does it run with --pprof?)", path, server, resp.Status)
	}
	return b, nil
}
