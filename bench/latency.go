package bench

import (
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs up to latencyMaxMicros,
// with three significant digits (0.1% resolution).
const (
	latencyMinMicros  = 1
	latencyMaxMicros  = int64(60 * time.Second / time.Microsecond)
	latencySigFigures = 3
)

// newLatencyHistogram returns an empty histogram with flashbench's geometry.
func newLatencyHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(latencyMinMicros, latencyMaxMicros, latencySigFigures)
}

// recordLatency records d in h, clamped into the trackable range so that no
// sample is ever dropped: a stall beyond a minute still counts, as a minute.
func recordLatency(h *hdrhistogram.Histogram, d time.Duration) {
	micros := int64(d / time.Microsecond)
	if micros < latencyMinMicros {
		micros = latencyMinMicros
	}
	if micros > latencyMaxMicros {
		micros = latencyMaxMicros
	}
	_ = h.RecordValue(micros) // cannot fail: the value is in range
}

// LatencySummary is the distribution of one set of latencies, in microseconds.
type LatencySummary struct {
	Count        int64   `json:"count"`
	MeanMicros   float64 `json:"mean_micros"`
	P50Micros    int64   `json:"p50_micros"`
	P90Micros    int64   `json:"p90_micros"`
	P99Micros    int64   `json:"p99_micros"`
	P999Micros   int64   `json:"p99_9_micros"`
	MaxMicros    int64   `json:"max_micros"`
	MinMicros    int64   `json:"min_micros"`
	StdDevMicros float64 `json:"stddev_micros"`
}

// summarize reads the percentiles flashbench reports out of h. An empty
// histogram gives a zero summary.
func summarize(h *hdrhistogram.Histogram) LatencySummary {
	if h == nil || h.TotalCount() == 0 {
		return LatencySummary{}
	}
	return LatencySummary{
		Count:        h.TotalCount(),
		MeanMicros:   h.Mean(),
		P50Micros:    h.ValueAtQuantile(50),
		P90Micros:    h.ValueAtQuantile(90),
		P99Micros:    h.ValueAtQuantile(99),
		P999Micros:   h.ValueAtQuantile(99.9),
		MaxMicros:    h.Max(),
		MinMicros:    h.Min(),
		StdDevMicros: h.StdDev(),
	}
}
