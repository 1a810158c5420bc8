package engine

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// holdGrowthLiveHolds is how many live holds BenchmarkHoldWithLiveHolds
// creates before it measures: millions, as a long sale on one product
// leaves them (a hold lives for the hold TTL; here an hour, so none expires).
const holdGrowthLiveHolds = 3_000_000

// BenchmarkHoldWithLiveHolds times every single hold on one product from 64
// callers, with no live holds and with holdGrowthLiveHolds of them, side by
// side. It reports the p50, p99, p99.9 and maximum latency of one hold next
// to holds/s, so that a stall on the actor's goroutine shows up even when
// the throughput does not: copying millions of stored holds or deadlines when
// a slice outgrows its capacity, or the collector scanning a large heap.
// Above 256 entries Go grows a slice by about 1.25×, so let the measured
// holds be at least a quarter of the live ones to cross a growth:
//
//	go test -run '^$' -bench HoldWithLiveHolds -benchtime 1000000x ./engine/
func BenchmarkHoldWithLiveHolds(b *testing.B) {
	for _, live := range []int{0, holdGrowthLiveHolds} {
		b.Run(fmt.Sprintf("live=%d", live), func(b *testing.B) { benchHoldWithLiveHolds(b, live) })
	}
}

func benchHoldWithLiveHolds(b *testing.B, live int) {
	cfg := DefaultConfig()
	cfg.Journal = &discardJournal{}
	cfg.HoldTTL = time.Hour
	e := New(cfg)
	replayLiveHolds(b, e, live, cfg.HoldTTL)
	e.Start()
	b.Cleanup(e.Stop)
	latencies := make([]time.Duration, b.N)
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t0 := time.Now()
			r := e.CreateHold(1, 1, nil)
			latencies[next.Add(1)-1] = time.Since(t0)
			if r.Code != OK {
				b.Errorf("hold: %s, want OK", r.Code)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "holds/s")
	slices.Sort(latencies)
	at := func(q float64) float64 {
		return float64(latencies[int(q*float64(len(latencies)-1))]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
	b.ReportMetric(at(0.999), "p99.9-µs")
	b.ReportMetric(at(1), "max-µs")
}

// replayLiveHolds replays into e, before it starts, the creation of product
// 1 (StockMax units) and of n holds of one unit on it that expire ttl from
// now: the same state as n calls of CreateHold, built several times faster,
// so that the setup of each benchmark round stays short.
func replayLiveHolds(b *testing.B, e *Engine, n int, ttl time.Duration) {
	now := time.Now().UnixNano()
	buf := appendRecord(nil, &record{kind: recProductCreated, atNanos: now, product: 1, name: "Hot",
		priceCents: 1, qty: StockMax, maxPerHold: 1})
	if err := e.Replay(buf); err != nil {
		b.Fatal(err)
	}
	r := record{kind: recHoldCreated, atNanos: now, product: 1, qty: 1, deadline: now + int64(ttl)}
	for seq := 1; seq <= n; seq++ {
		r.holdSeq = uint64(seq)
		r.secret[0], r.secret[1], r.secret[2] = byte(seq), byte(seq>>8), byte(seq>>16)
		buf = appendRecord(buf[:0], &r)
		if err := e.Replay(buf); err != nil {
			b.Fatalf("replaying hold %d: %v", seq, err)
		}
	}
	if p, _ := e.Product(1); p.Reserved != int64(n) {
		b.Fatalf("%d units reserved after replaying %d holds", p.Reserved, n)
	}
}
