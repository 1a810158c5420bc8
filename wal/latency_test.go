package wal

import (
	"testing"
	"time"
)

// TestFsyncLatencyOncePerBatch checks that every batch the committer writes
// is observed exactly once, in the bucket its write and fsync took.
func TestFsyncLatencyOncePerBatch(t *testing.T) {
	const slow = 30 * time.Millisecond // the hook's delay: in the (0.025, 0.05] bucket or above
	delay := time.Duration(0)
	l := mustOpen(t, t.TempDir(), Options{CommitHook: func(write func() error) error {
		time.Sleep(delay) // only the committer reads delay, after the submit below
		return write()
	}})
	l.Start()
	defer l.Close()
	for i := 0; i < 5; i++ {
		if err := submitWait(l, testRecords(3*i, 3*i+3)); err != nil {
			t.Fatal(err)
		}
	}
	delay = slow
	if err := submitWait(l, testRecords(15, 16)); err != nil {
		t.Fatal(err)
	}
	lat, st := l.FsyncLatency(), l.Stats()
	if len(lat.Counts) != len(lat.UpperBoundsSeconds)+1 {
		t.Fatalf("%d counts for %d bounds", len(lat.Counts), len(lat.UpperBoundsSeconds))
	}
	var total, slowOnes uint64
	for i, n := range lat.Counts {
		total += n
		if i == len(lat.UpperBoundsSeconds) || lat.UpperBoundsSeconds[i] > slow.Seconds() {
			slowOnes += n
		}
	}
	if total != st.Batches || total != 6 {
		t.Fatalf("histogram counts %d observations, the log wrote %d batches, want 6", total, st.Batches)
	}
	if slowOnes < 1 {
		t.Fatalf("the %v batch is in no bucket above %v: %v", slow, slow, lat.Counts)
	}
	if lat.SumSeconds < slow.Seconds() || lat.SumSeconds > float64(st.CommitNanos)/1e9 {
		t.Fatalf("sum %gs, want at least %v and at most the commit time %gs", lat.SumSeconds, slow, float64(st.CommitNanos)/1e9)
	}
}

func TestLatencyHistogramBuckets(t *testing.T) {
	var h latencyHistogram
	h.observe(0)                     // first bucket
	h.observe(50 * time.Microsecond) // on the first bound: first bucket
	h.observe(51 * time.Microsecond) // second
	h.observe(time.Second)           // on the 1 s bound
	h.observe(time.Minute)           // above every bound
	got := h.snapshot()
	want := map[int]uint64{0: 2, 1: 1, 13: 1, len(FsyncBucketsSeconds): 1}
	for i, n := range got.Counts {
		if n != want[i] {
			t.Fatalf("bucket %d (le %v) = %d, want %d: %v", i, append(FsyncBucketsSeconds[:], 0)[i], n, want[i], got.Counts)
		}
	}
	if FsyncBucketsSeconds[13] != 1 {
		t.Fatalf("bound 13 is %v, the test expects 1 s", FsyncBucketsSeconds[13])
	}
	if d := got.SumSeconds - 61.000101; d > 1e-9 || d < -1e-9 {
		t.Fatalf("sum %v, want 61.000101", got.SumSeconds)
	}
}

func TestFsyncObserveDoesNotAllocate(t *testing.T) {
	var h latencyHistogram
	if n := testing.AllocsPerRun(1000, func() { h.observe(3 * time.Millisecond) }); n != 0 {
		t.Fatalf("observe allocates %v times", n)
	}
}

func BenchmarkFsyncObserve(b *testing.B) {
	var h latencyHistogram
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.observe(time.Duration(i&0xfffff) * time.Microsecond)
	}
}
