package bench

import (
	"fmt"
	"io"
	"os"
)

// IsTerminal reports whether f is a character device such as a terminal;
// the progress line is shown only then.
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressLine returns a show function for startTimeline that redraws one
// line on out with the last interval's requests per second, p99, failures
// (no answer or 5xx) and the workload's own figure. clearProgressLine
// removes it.
func progressLine(out io.Writer, extra func() string) func(IntervalResult) {
	return func(iv IntervalResult) {
		fmt.Fprintf(out, "\r\033[K%4.0fs  %9.0f req/s  p99 %-9s  failures %-6d %s",
			iv.StartSec+iv.DurationSec, iv.RequestsPerSec, formatMicros(iv.P99Micros), iv.Failures, extra())
	}
}

// clearProgressLine erases the line progressLine draws.
func clearProgressLine(out io.Writer) { fmt.Fprint(out, "\r\033[K") }

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
