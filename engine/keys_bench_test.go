package engine

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// uuidKey writes a realistic 36-byte UUID-shaped key for i into buf.
func uuidKey(buf *[36]byte, i uint64) string {
	const hex = "0123456789abcdef"
	h := i*0x9e3779b97f4a7c15 ^ 0xdeadbeefcafebabe
	l := i ^ h>>7
	n := 0
	for j := 0; j < 36; j++ {
		if j == 8 || j == 13 || j == 18 || j == 23 {
			buf[j] = '-'
			continue
		}
		v := h
		if n >= 16 {
			v = l
		}
		buf[j] = hex[(v>>(4*(n%16)))&15]
		n++
	}
	return string(buf[:])
}

// BenchmarkKeyTable10M remembers 10 M hold answers under 36-byte UUID
// keys spread over one TTL, reports the heap they take (bytes/key, after
// GC), then drops the oldest generation while a reader looks keys up, and
// reports the longest lookup meanwhile (max-lookup-ns). Run it alone:
//
//	go test -run '^$' -bench KeyTable10M -benchtime 1x ./engine/
func BenchmarkKeyTable10M(b *testing.B) {
	const keys = 10_000_000
	for b.Loop() {
		var st Stats
		ttl := int64(24 * time.Hour)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		kt := newKeyTable(ttl, newKeyBudget(DefaultIdempotencyKeyBytesMax, &st, nil))
		start := testEpoch.UnixNano()
		var buf [36]byte
		var secret [16]byte
		for i := uint64(0); i < keys; i++ {
			at := start + int64(i)*(ttl/keys)
			kt.remember(uuidKey(&buf, i), at, holdCreatedAnswer(1+i%100, 1+i, secret, 1+int64(i%5), at+int64(2*time.Minute)))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
		b.ReportMetric(float64(heap)/keys, "heap-bytes/key")
		b.ReportMetric(float64(st.IdempotencyKeyBytes.Load())/keys, "budget-bytes/key")
		b.ReportMetric(float64(heap)/(1<<30), "heap-GiB")
		if heap > 3<<29 {
			b.Errorf("10 M keys take %d bytes of heap, above 1.5 GiB", heap)
		}

		// Drop the first generation while lookups run.
		now := start + ttl + kt.spanNanos
		var stop atomic.Bool
		var maxNanos atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			var kb [36]byte
			for i := uint64(0); !stop.Load(); i = (i + 7919) % keys {
				k := []byte(uuidKey(&kb, i))
				t0 := time.Now()
				s, tag := kt.locate(k)
				s.mu.Lock()
				kt.lookupLocked(s, k, tag, now)
				s.mu.Unlock()
				if d := time.Since(t0).Nanoseconds(); d > maxNanos.Load() {
					maxNanos.Store(d)
				}
			}
		}()
		time.Sleep(20 * time.Millisecond)
		maxNanos.Store(0)
		t0 := time.Now()
		dropped := kt.sweep(now)
		sweep := time.Since(t0)
		time.Sleep(5 * time.Millisecond)
		stop.Store(true)
		<-done
		if dropped == 0 {
			b.Fatal("the sweep dropped nothing")
		}
		b.ReportMetric(float64(maxNanos.Load()), "max-lookup-ns")
		b.ReportMetric(float64(sweep.Microseconds()), "sweep-µs")
		b.ReportMetric(float64(dropped), "dropped-keys")
		if maxNanos.Load() > int64(time.Millisecond) {
			b.Errorf("a lookup took %v while a generation was dropped", time.Duration(maxNanos.Load()))
		}
		runtime.KeepAlive(kt)
	}
}
