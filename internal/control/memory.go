package control

import (
	"net/http"
	"runtime"
	"runtime/metrics"

	"github.com/wgbird/wgbird/internal/api"
)

// handleMemory answers GET /debug/memory (with --pprof): the heap right
// after two forced GCs, read before anything of the reply is allocated,
// so a soak compares what wgbird holds and not the garbage of the request
// that measures it.
func handleMemory(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, readMemory())
}

func readMemory() api.MemoryReply {
	runtime.GC()
	runtime.GC()
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r := api.MemoryReply{
		HeapInuse: ms.HeapInuse, HeapSys: ms.HeapSys, HeapReleased: ms.HeapReleased,
		HeapObjects: ms.HeapObjects, StackInuse: ms.StackInuse, Sys: ms.Sys, NumGC: ms.NumGC,
	}
	if live[0].Value.Kind() == metrics.KindUint64 {
		r.HeapLive = live[0].Value.Uint64()
	} else {
		r.HeapLive = ms.HeapAlloc // a runtime without the metric
	}
	return r
}
