package service

import (
	"context"
	"os"
	"runtime/debug"
)

// DefaultGCPercent is the GOGC a mesh process runs with unless the GOGC environment
// variable says otherwise. Mesh services keep little live heap (a few MiB) and allocate
// per message, so Go's default of 100 starts a collection every few hundred milliseconds
// under load; 400 trades a few MiB of heap for fewer collections, which keeps the edge's
// tail latency under steady load lower. GOMEMLIMIT, when set, still bounds the heap.
const DefaultGCPercent = 400

// SetProcessGC applies DefaultGCPercent when GOGC is not set. Only mains call it: it is a
// process-wide setting.
func SetProcessGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(DefaultGCPercent)
	}
}

// close releases what NewBase opened when the service never ran.
func (b *Base) close(ctx context.Context) {
	b.Conn.Close()
	if b.Bus != nil {
		b.Bus.Close()
	}
	if b.stopTracing != nil {
		_ = b.stopTracing(ctx)
	}
}
