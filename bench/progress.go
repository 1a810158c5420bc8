package bench

import (
	"fmt"
	"io"
	"os"
	"time"
)

// IsTerminal reports whether f is a character device such as a terminal;
// the progress line is shown only then.
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressInterval is how often the live line is redrawn.
const progressInterval = time.Second

// startProgress redraws one line on out every interval with the last
// interval's requests per second, p99, failures (no answer or 5xx) and the
// workload's own figure. The returned function stops it and clears the line.
func startProgress(out io.Writer, rec *recorder, extra func() string, interval time.Duration) (stop func()) {
	start := time.Now()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		last := start
		for {
			select {
			case <-done:
				fmt.Fprint(out, "\r\033[K")
				return
			case now := <-ticker.C:
				snap := rec.drainInterval()
				perSec := float64(snap.requests) / now.Sub(last).Seconds()
				last = now
				fmt.Fprintf(out, "\r\033[K%4.0fs  %9.0f req/s  p99 %-9s  failures %-6d %s",
					now.Sub(start).Seconds(), perSec, formatMicros(snap.p99Micros), snap.failures, extra())
			}
		}
	}()
	return func() { close(done); <-finished }
}

// formatMicros renders a latency for people: 850µs, 1.25ms, 2.5s.
func formatMicros(micros int64) string {
	switch {
	case micros < 1000:
		return fmt.Sprintf("%dµs", micros)
	case micros < 1_000_000:
		return fmt.Sprintf("%.2fms", float64(micros)/1000)
	default:
		return fmt.Sprintf("%.2fs", float64(micros)/1e6)
	}
}
