package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// opFunc is one unit of a workload's work run by one worker: a single read
// for browse, a whole hold → order → payment flow for checkout. An op may
// make several requests; in open loop only the first is timed from the
// intended start.
type opFunc func(w *worker)

// driveResult is what the load loop itself measured.
type driveResult struct {
	elapsed time.Duration
	ops     int64
	// missedArrivals counts open-loop arrivals that were due before the end
	// of the run but never started because every worker was still busy: the
	// server fell behind the requested rate by that many operations.
	missedArrivals int64
}

// drive runs op on every worker until duration has passed or ctx is done.
// With ratePerSec <= 0 it is a closed loop: each worker starts its next op
// as soon as the last one ends. With ratePerSec > 0 it is an open loop: ops
// are due at fixed intervals whatever the server does, and each op's first
// request is timed from the moment it was due.
func drive(ctx context.Context, workers []*worker, duration time.Duration, ratePerSec float64, op opFunc) driveResult {
	ctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	start := time.Now()
	var ops atomic.Int64
	var missed int64
	if ratePerSec <= 0 {
		runClosedLoop(ctx, workers, op, &ops)
	} else {
		missed = runOpenLoop(ctx, workers, start, ratePerSec, op, &ops)
	}
	return driveResult{elapsed: time.Since(start), ops: ops.Load(), missedArrivals: missed}
}

// runClosedLoop keeps every worker busy until ctx is done.
func runClosedLoop(ctx context.Context, workers []*worker, op opFunc, ops *atomic.Int64) {
	var stop atomic.Bool
	go func() { <-ctx.Done(); stop.Store(true) }()
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				op(w)
				ops.Add(1)
			}
		}()
	}
	wg.Wait()
}

// runOpenLoop issues arrivals at ratePerSec until ctx is done and returns the
// number of arrivals that were due but never started.
func runOpenLoop(ctx context.Context, workers []*worker, start time.Time, ratePerSec float64, op opFunc, ops *atomic.Int64) int64 {
	arrivals := make(chan time.Time, len(workers))
	var missed atomic.Int64
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for due := range arrivals {
				if ctx.Err() != nil {
					missed.Add(1)
					continue
				}
				w.intended = due
				op(w)
				w.intended = time.Time{}
				ops.Add(1)
			}
		}()
	}
	generateArrivals(ctx, start, ratePerSec, arrivals, &missed)
	close(arrivals)
	wg.Wait()
	return missed.Load()
}

// generateArrivals sends the due time of arrival i, start + i/ratePerSec, on
// out once that time has come, until ctx is done. When out is full (all
// workers busy) it blocks; the due times still follow the schedule, so the
// backlog shows up as latency. Arrivals due before the end but still unsent
// when ctx ends are added to missed.
func generateArrivals(ctx context.Context, start time.Time, ratePerSec float64, out chan<- time.Time, missed *atomic.Int64) {
	intervalNanos := float64(time.Second) / ratePerSec
	deadline, _ := ctx.Deadline()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := int64(0); ; i++ {
		due := start.Add(time.Duration(float64(i) * intervalNanos))
		if !deadline.IsZero() && !due.Before(deadline) {
			return
		}
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				missed.Add(countDue(due, deadline, intervalNanos))
				return
			case <-timer.C:
			}
		}
		select {
		case out <- due:
		case <-ctx.Done():
			missed.Add(countDue(due, deadline, intervalNanos))
			return
		}
	}
}

// countDue is the number of arrivals from due (included) up to deadline.
func countDue(due, deadline time.Time, intervalNanos float64) int64 {
	if deadline.IsZero() || !due.Before(deadline) {
		return 0
	}
	return int64(float64(deadline.Sub(due))/intervalNanos) + 1
}
