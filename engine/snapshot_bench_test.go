package engine

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// BenchmarkSnapshotPause measures how long a snapshot of a large state
// keeps the engine paused (pause-ms: Pause, the view of the state, resume;
// pause-max-ms the longest), and the encoding after it (encode-ms), with
// 10 M remembered idempotency keys (36-byte UUIDs), 1 M holds and an order
// made from each. Target (issue 10): pause <= 50 ms. Building the state
// takes about 20 s and each encoding about 15 s (5.5 GiB of memory at
// most); run it alone:
//
//	go test -run '^$' -bench SnapshotPause -benchtime 3x ./engine/
func BenchmarkSnapshotPause(b *testing.B) {
	const keys, holds = 10_000_000, 1_000_000
	cfg := DefaultConfig()
	cfg.Journal = &discardJournal{}
	cfg.HoldTTL = time.Hour
	e := New(cfg)
	e.Start()
	defer e.Stop()
	if _, err := e.Seed([]ProductSpec{{ID: 1, Name: "Big", PriceCents: 1, TotalStock: holds, MaxPerHold: 1}}); err != nil {
		b.Fatal(err)
	}
	const workers = 16
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range holds / workers {
				r := e.CreateHold(1, 1, nil)
				if r.Code != OK {
					b.Errorf("hold: %s", r.Code)
					return
				}
				if o := e.CreateOrder(r.Hold.Token); o.Code != OK {
					b.Errorf("order: %s", o.Code)
					return
				}
			}
		}()
	}
	wg.Wait()
	now := time.Now().UnixNano()
	var kb [36]byte
	var secret [16]byte
	answer := func(i uint64) keyAnswer {
		return holdCreatedAnswer(1, 1+i%holds, secret, 1, now+int64(time.Hour))
	}
	for i := uint64(0); i < keys; i++ {
		e.holdKeys.remember(uuidKey(&kb, i), now, answer(i))
	}
	runtime.GC()

	var pauseSum, pauseMax, encodeSum time.Duration
	var snap []byte
	next := uint64(keys)
	for b.Loop() {
		start := time.Now()
		resume, err := e.Pause()
		if err != nil {
			b.Fatal(err)
		}
		v := e.CaptureSnapshot(time.Now())
		resume()
		pause := time.Since(start)
		// Work right after the pause, in what the view shares: a key in
		// the generation it reads, a payment for one of its orders.
		e.holdKeys.remember(uuidKey(&kb, next), time.Now().UnixNano(), answer(next))
		if p := e.ApplyPayment(Payment{OrderID: next - keys + 1, Success: true}, kb[:]); p.Code != OK {
			b.Fatalf("payment: %s", p.Code)
		}
		next++
		start = time.Now()
		snap = v.AppendTo(snap[:0])
		encodeSum += time.Since(start)
		pauseSum += pause
		pauseMax = max(pauseMax, pause)
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return d.Seconds() * 1000 }
	b.ReportMetric(ms(pauseSum)/n, "pause-ms")
	b.ReportMetric(ms(pauseMax), "pause-max-ms")
	b.ReportMetric(ms(encodeSum)/n, "encode-ms")
	b.ReportMetric(float64(len(snap))/(1<<20), "snapshot-MiB")
}
