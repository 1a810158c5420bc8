package bench

import (
	"testing"
	"time"
)

func TestRecordLatencyClampsIntoRange(t *testing.T) {
	h := newLatencyHistogram()
	recordLatency(h, 0)
	recordLatency(h, 500*time.Nanosecond)
	recordLatency(h, 2*time.Minute)
	if got := h.TotalCount(); got != 3 {
		t.Fatalf("count = %d, want 3: no sample may be dropped", got)
	}
	if got := h.Min(); got != latencyMinMicros {
		t.Errorf("min = %dµs, want %dµs", got, latencyMinMicros)
	}
	if got := h.Max(); !h.ValuesAreEquivalent(got, latencyMaxMicros) {
		t.Errorf("max = %dµs, want the clamp %dµs", got, latencyMaxMicros)
	}
}

func TestSummarizePercentiles(t *testing.T) {
	h := newLatencyHistogram()
	for us := 1; us <= 10000; us++ {
		recordLatency(h, time.Duration(us)*time.Microsecond)
	}
	s := summarize(h)
	within := func(name string, got, want int64) {
		t.Helper()
		if d := got - want; d < -want/500 || d > want/500 { // 0.2%: the histogram's resolution is 0.1%
			t.Errorf("%s = %d, want %d ± 0.2%%", name, got, want)
		}
	}
	if s.Count != 10000 {
		t.Errorf("count = %d, want 10000", s.Count)
	}
	within("p50", s.P50Micros, 5000)
	within("p90", s.P90Micros, 9000)
	within("p99", s.P99Micros, 9900)
	within("p99.9", s.P999Micros, 9990)
	within("max", s.MaxMicros, 10000)
	if (summarize(newLatencyHistogram()) != LatencySummary{}) {
		t.Error("an empty histogram must summarize to zeros")
	}
}

func TestRecorderMergesShardsAndCountsErrors(t *testing.T) {
	rec := newRecorder(40)
	if len(rec.shards) != recorderShardsMax {
		t.Fatalf("shards = %d, want the cap %d", len(rec.shards), recorderShardsMax)
	}
	for id := 0; id < 40; id++ {
		s := rec.shard(id)
		s.record(EndpointHoldCreate, 201, nil, time.Millisecond)
		s.record(EndpointHoldCreate, 409, []byte("insufficient_stock"), 2*time.Millisecond)
		s.record(EndpointProductGet, 0, nil, 3*time.Millisecond)
	}
	scratch := newLatencyHistogram()
	snap := rec.drainInterval(scratch)
	if snap.requests != 120 || snap.failures != 40 || snap.latency.Count != 120 {
		t.Errorf("interval = %d requests (%d latencies), %d failures; want 120, 120, 40 (409 is not a failure)",
			snap.requests, snap.latency.Count, snap.failures)
	}
	if again := rec.drainInterval(scratch); again.requests != 0 || again.latency.Count != 0 {
		t.Errorf("second drain = %d requests, %d latencies; want 0: drain must reset", again.requests, again.latency.Count)
	}
	tot := rec.totals()
	holds := tot[EndpointHoldCreate]
	if holds.requests != 80 || holds.latency.TotalCount() != 80 {
		t.Errorf("holds: %d requests, %d latencies; want 80", holds.requests, holds.latency.TotalCount())
	}
	if holds.byStatus[201] != 40 || holds.byStatus[409] != 40 {
		t.Errorf("holds by status = %v", holds.byStatus)
	}
	if n := holds.byError[errorKey{409, "insufficient_stock"}]; n != 40 {
		t.Errorf("409 insufficient_stock = %d, want 40", n)
	}
	if n := tot[EndpointProductGet].byError[errorKey{0, ""}]; n != 40 {
		t.Errorf("transport errors = %d, want 40", n)
	}
}
