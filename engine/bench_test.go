package engine

import (
	"sync/atomic"
	"testing"
	"time"
)

// discardJournal acknowledges at once and keeps nothing: it isolates the
// actor path from the log in benchmarks.
type discardJournal struct{ records atomic.Int64 }

func (j *discardJournal) Submit(records [][]byte, done func(error)) {
	j.records.Add(int64(len(records)))
	done(nil)
}

func benchEngine(b *testing.B, specs ...ProductSpec) *Engine {
	return benchEngineConfigured(b, nil, specs...)
}

// benchEngineConfigured is benchEngine with configure (if not nil) applied
// to its configuration.
func benchEngineConfigured(b *testing.B, configure func(*Config), specs ...ProductSpec) *Engine {
	cfg := DefaultConfig()
	cfg.Journal = &discardJournal{}
	if configure != nil {
		configure(&cfg)
	}
	e := New(cfg)
	e.Start()
	b.Cleanup(e.Stop)
	if _, err := e.Seed(specs); err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkHoldHotProduct: many callers race for one product through its
// actor. Target (issue 2): >= 1,000,000 holds/s on 2 cores, 0 allocs/op.
func BenchmarkHoldHotProduct(b *testing.B) { benchHolds(b, nil, StockMax, OK) }

// BenchmarkHoldSoldOut: the spike after sell-out, all refusals, each a
// round trip through the product's actor.
func BenchmarkHoldSoldOut(b *testing.B) { benchHolds(b, nil, 0, CodeInsufficientStock) }

// BenchmarkHoldSoldOutFromDurableCounts: the same spike on a single node's
// engine (RefuseFromDurableCounts), refused from the durable counts.
func BenchmarkHoldSoldOutFromDurableCounts(b *testing.B) {
	benchHolds(b, func(c *Config) { c.RefuseFromDurableCounts = true }, 0, CodeInsufficientStock)
}

// benchHolds runs holds of one unit from 64 goroutines against a product
// of the given stock, each expected to answer want.
func benchHolds(b *testing.B, configure func(*Config), stock int64, want Code) {
	e := benchEngineConfigured(b, configure, ProductSpec{ID: 1, Name: "Hot", PriceCents: 1, TotalStock: stock, MaxPerHold: 1})
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := e.CreateHold(1, 1, nil); r.Code != want {
				b.Errorf("hold: %s, want %s", r.Code, want)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "holds/s")
}

// BenchmarkProductRead: GET /api/products/{id} below HTTP, no actor round trip.
func BenchmarkProductRead(b *testing.B) {
	e := benchEngine(b, ProductSpec{ID: 1, Name: "Read", PriceCents: 1, TotalStock: 10, MaxPerHold: 1})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := e.Product(1); !ok {
				b.Error("missing")
				return
			}
		}
	})
}

// BenchmarkCheckout: hold, order and a success webhook under a fresh key.
func BenchmarkCheckout(b *testing.B) {
	e := benchEngine(b, ProductSpec{ID: 1, Name: "C", PriceCents: 1, TotalStock: StockMax, MaxPerHold: 1})
	var seq atomic.Uint64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		key := make([]byte, 0, 24)
		for pb.Next() {
			h := e.CreateHold(1, 1, nil)
			o := e.CreateOrder(h.Hold.Token)
			key = appendKey(key[:0], seq.Add(1))
			if r := e.ApplyPayment(Payment{OrderID: o.Order.ID, Success: true}, key); r.Status != OrderPaid {
				b.Errorf("payment: %+v", r)
				return
			}
		}
	})
}

func appendKey(dst []byte, n uint64) []byte {
	dst = append(dst, 'k')
	for n > 0 {
		dst = append(dst, byte('0'+n%10))
		n /= 10
	}
	return dst
}

// BenchmarkReplay: applying logged records into a fresh engine.
func BenchmarkReplay(b *testing.B) {
	const holds = 100_000
	j := &MemJournal{}
	cfg := DefaultConfig()
	cfg.Journal = j
	e := New(cfg)
	e.Start()
	e.Seed([]ProductSpec{{ID: 1, Name: "R", PriceCents: 1, TotalStock: StockMax, MaxPerHold: 1}})
	for i := 0; i < holds; i++ {
		e.CreateHold(1, 1, nil)
	}
	e.Stop()
	recs := j.Records()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		next := New(cfg)
		for _, r := range recs {
			if err := next.Replay(r); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(recs))/time.Since(start).Seconds(), "records/s")
}
