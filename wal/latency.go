package wal

import (
	"sync/atomic"
	"time"
)

// FsyncBucketsSeconds are the upper bounds of the fsync latency histogram:
// from 50 µs (a write cache that lies, or --fsync=never) to 5 s (a disk in
// trouble; the commit stall timeout is not far beyond), dense around the
// 0.1–10 ms a real flush takes.
var FsyncBucketsSeconds = [...]float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// fsyncBucketsNanos are FsyncBucketsSeconds in nanoseconds, so that
// observing compares integers.
var fsyncBucketsNanos = func() (ns [len(FsyncBucketsSeconds)]int64) {
	for i, s := range FsyncBucketsSeconds {
		ns[i] = int64(s * float64(time.Second))
	}
	return ns
}()

// latencyHistogram counts durations in the FsyncBucketsSeconds buckets.
// Observing is a few atomic adds: no lock, no allocation.
type latencyHistogram struct {
	counts   [len(FsyncBucketsSeconds) + 1]atomic.Uint64 // the last: above every bound
	sumNanos atomic.Uint64
}

func (h *latencyHistogram) observe(d time.Duration) {
	i := 0
	for i < len(fsyncBucketsNanos) && int64(d) > fsyncBucketsNanos[i] {
		i++
	}
	h.counts[i].Add(1)
	if d > 0 {
		h.sumNanos.Add(uint64(d))
	}
}

// Latency is a histogram's state at one instant: Counts[i] observations
// took at most UpperBoundsSeconds[i] and more than the bound before it; the
// last count is those above every bound.
type Latency struct {
	UpperBoundsSeconds []float64
	Counts             []uint64 // len(UpperBoundsSeconds)+1
	SumSeconds         float64
}

func (h *latencyHistogram) snapshot() Latency {
	l := Latency{UpperBoundsSeconds: FsyncBucketsSeconds[:], Counts: make([]uint64, len(h.counts))}
	for i := range h.counts {
		l.Counts[i] = h.counts[i].Load()
	}
	l.SumSeconds = float64(h.sumNanos.Load()) / float64(time.Second)
	return l
}

// FsyncLatency is the histogram of the committer's batch writes: the time
// of one write of a batch and its fsync (the write alone under NoSync),
// observed once per batch. In cluster mode the Raft node's log is a Log
// too, so it is the node's disk write and fsync per round.
func (l *Log) FsyncLatency() Latency { return l.fsync.snapshot() }
