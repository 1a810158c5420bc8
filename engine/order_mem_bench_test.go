package engine

import (
	"runtime"
	"testing"
	"time"
)

// BenchmarkOrderMemory measures what an order keeps in memory for the life
// of the data directory (orders are never dropped): 1 M holds are made,
// then an order from each, and heap-bytes/order is the heap the orders
// added (after GC), on top of their holds, and snapshot-bytes/order what
// they added to a snapshot. The hold itself is forgotten
// ExpiredHoldRetention after it finished, and an idempotency key after its
// TTL, so what stays is this figure. Run it alone:
//
//	go test -run '^$' -bench OrderMemory -benchtime 1x ./engine/
func BenchmarkOrderMemory(b *testing.B) {
	const orders = 1_000_000
	for b.Loop() {
		cfg := DefaultConfig()
		cfg.Journal = &discardJournal{}
		cfg.Clock = NewFakeClock(testEpoch)
		cfg.HoldTTL = time.Hour
		cfg.OrderTTL = 0 // a pending order's deadline entry is transient; leave it out
		e := New(cfg)
		e.Start()
		if _, err := e.Seed([]ProductSpec{{ID: 1, Name: "Sale", PriceCents: 1999, TotalStock: orders, MaxPerHold: 1}}); err != nil {
			b.Fatal(err)
		}
		tokens := make([]HoldToken, orders)
		for i := range tokens {
			r := e.CreateHold(1, 1, nil)
			if r.Code != OK {
				b.Fatalf("hold: %s", r.Code)
			}
			tokens[i] = r.Hold.Token
		}
		snapBefore := pausedSnapshotBytes(b, e)
		before := heapAfterGC()
		for _, tok := range tokens {
			if r := e.CreateOrder(tok); r.Code != OK {
				b.Fatalf("order: %s", r.Code)
			}
		}
		after := heapAfterGC()
		b.ReportMetric(float64(int64(after)-int64(before))/orders, "heap-bytes/order")
		b.ReportMetric(float64(pausedSnapshotBytes(b, e)-snapBefore)/orders, "snapshot-bytes/order")
		e.Stop()
		runtime.KeepAlive(tokens)
	}
}

// pausedSnapshotBytes is the size of a snapshot of the running engine e.
func pausedSnapshotBytes(b *testing.B, e *Engine) int {
	resume, err := e.Pause()
	if err != nil {
		b.Fatal(err)
	}
	v := e.CaptureSnapshot(e.cfg.Clock.Now())
	resume()
	return len(v.AppendTo(nil))
}

func heapAfterGC() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
