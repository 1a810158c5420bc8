package bench

import (
	"fmt"
	"io"
	"time"
)

// timelineInterval is the width of one entry of a run's timeline.
const timelineInterval = time.Second

// IntervalResult is the load of one interval of a run: the requests that
// completed in it (every request is in exactly one interval) and their
// latency. The last interval is shorter when the run is not a whole number
// of intervals.
type IntervalResult struct {
	StartSec       float64 `json:"start_sec"` // since the load began
	DurationSec    float64 `json:"duration_sec"`
	Requests       int64   `json:"requests"`
	RequestsPerSec float64 `json:"requests_per_sec"`
	Failures       int64   `json:"failures"` // no answer or 5xx
	P50Micros      int64   `json:"p50_micros"`
	P99Micros      int64   `json:"p99_micros"`
	MaxMicros      int64   `json:"max_micros"`
}

// startTimeline drains rec's interval figures every interval from now on:
// each drain becomes an entry of the timeline and, when show is not nil, is
// passed to show (on the sampling goroutine; the last one on stop's). The requests themselves pay
// nothing for it: each is recorded once in its shard's interval histogram,
// which the drain merges into one reused histogram and resets. stop ends the
// sampling, drains the last, partial interval (once the workers have stopped,
// so no request is missed) and returns the timeline.
func startTimeline(rec *recorder, interval time.Duration, show func(IntervalResult)) (stop func() []IntervalResult) {
	start := time.Now()
	merged := newLatencyHistogram()
	var intervals []IntervalResult // written by the sampler, then by stop
	last := start
	sample := func(now time.Time) IntervalResult {
		snap := rec.drainInterval(merged)
		iv := IntervalResult{
			StartSec:    last.Sub(start).Seconds(),
			DurationSec: now.Sub(last).Seconds(),
			Requests:    snap.requests,
			Failures:    snap.failures,
			P50Micros:   snap.latency.P50Micros,
			P99Micros:   snap.latency.P99Micros,
			MaxMicros:   snap.latency.MaxMicros,
		}
		iv.RequestsPerSec = perSec(iv.Requests, iv.DurationSec)
		last = now
		intervals = append(intervals, iv)
		return iv
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-ticker.C:
				iv := sample(now)
				if show != nil {
					show(iv)
				}
			}
		}
	}()
	return func() []IntervalResult {
		close(done)
		<-finished
		if now := time.Now(); now.After(last) {
			if iv := sample(now); iv.Requests == 0 {
				intervals = intervals[:len(intervals)-1] // an empty tail says nothing
			} else if show != nil {
				show(iv)
			}
		}
		return intervals
	}
}

// verboseLine returns a show function for startTimeline that prints one line
// per interval on out: the end of the interval (since the load began), its
// figures and the workload's own figure.
func verboseLine(out io.Writer, extra func() string) func(IntervalResult) {
	return func(iv IntervalResult) {
		fmt.Fprintf(out, "%7.2fs  %9.0f req/s  p50 %-9s p99 %-9s max %-9s failures %-6d %s\n",
			iv.StartSec+iv.DurationSec, iv.RequestsPerSec, formatMicros(iv.P50Micros),
			formatMicros(iv.P99Micros), formatMicros(iv.MaxMicros), iv.Failures, extra())
	}
}

// slowestInterval returns the index of the interval with the largest
// maximum latency, or -1 for an empty timeline.
func slowestInterval(timeline []IntervalResult) int {
	worst := -1
	for i, iv := range timeline {
		if worst < 0 || iv.MaxMicros > timeline[worst].MaxMicros {
			worst = i
		}
	}
	return worst
}
