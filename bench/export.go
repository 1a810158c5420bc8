package bench

// Median returns the middle value of xs (the mean of the two middle values
// for an even count; 0 for none), without reordering xs: the suite's
// medians, for other reports over rounds (bench/wrk) to compute theirs alike.
func Median[T int64 | float64](xs []T) T { return median(xs) }

// FormatMicros prints a latency in microseconds as the suite's table does
// (µs below 1 ms, then ms, then s, two decimals).
func FormatMicros(micros int64) string { return formatMicros(micros) }
