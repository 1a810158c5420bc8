package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Run is what one wrk run printed, as read by Parse: wrk 4.1's text output
// with --latency, followed by the line holds.lua's done() writes.
type Run struct {
	Requests       int64   // "N requests in ..."
	RequestsPerSec float64 // "Requests/sec:"
	P50Micros      int64   // "Latency Distribution", 50%
	P99Micros      int64   // "Latency Distribution", 99%
	MaxMicros      int64   // the "Latency" row of "Thread Stats", column Max
	// SocketErrors sums wrk's "Socket errors:" line (connect, read, write,
	// timeout; 0 when wrk printed no such line). A timed-out request is in
	// no latency figure, so a run with timeouts understates its tail.
	SocketErrors int64
	Timeouts     int64
	// Expected is the status holds.lua was told every answer must have,
	// Unexpected the number of answers with another status.
	Expected   int
	Unexpected int64
}

// errMalformed wraps every reason Parse refuses an output.
var errMalformed = errors.New("not a wrk --latency output with holds.lua's summary")

// Parse reads one wrk output. Every figure of Run must be present and well
// formed (the socket error line is optional: wrk prints it only when there
// were some); otherwise Parse says which is missing or wrong, so that a
// changed wrk or a run that died half-way never turns into a figure.
func Parse(r io.Reader) (Run, error) {
	var run Run
	var have struct{ requests, rate, p50, p99, max, summary bool }
	sc := bufio.NewScanner(r)
	inDistribution := false
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		bad := func(what string, err error) error {
			return fmt.Errorf("%w: line %d %q: %s: %v", errMalformed, line, sc.Text(), what, err)
		}
		var err error
		switch {
		case f[0] == "Latency" && len(f) == 5 && !inDistribution:
			// Latency  Avg  Stdev  Max  +/-Stdev
			run.MaxMicros, err = parseMicros(f[3])
			if err != nil {
				return Run{}, bad("latency max", err)
			}
			have.max = true
		case f[0] == "Latency" && len(f) == 2 && f[1] == "Distribution":
			inDistribution = true
		case inDistribution && len(f) == 2 && strings.HasSuffix(f[0], "%"):
			var us int64
			if us, err = parseMicros(f[1]); err != nil {
				return Run{}, bad("percentile", err)
			}
			switch f[0] {
			case "50%":
				run.P50Micros, have.p50 = us, true
			case "99%":
				run.P99Micros, have.p99 = us, true
			}
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			inDistribution = false
			if run.Requests, err = strconv.ParseInt(f[0], 10, 64); err != nil {
				return Run{}, bad("requests", err)
			}
			have.requests = true
		case f[0] == "Socket" && len(f) >= 2 && f[1] == "errors:":
			if err = parseSocketErrors(f[2:], &run); err != nil {
				return Run{}, bad("socket errors", err)
			}
		case f[0] == "Requests/sec:" && len(f) == 2:
			if run.RequestsPerSec, err = strconv.ParseFloat(f[1], 64); err != nil {
				return Run{}, bad("requests/sec", err)
			}
			have.rate = true
		case f[0] == "holds.lua:" && len(f) == 5 && f[1] == "expected":
			// holds.lua: expected 201, unexpected 0
			if run.Expected, err = strconv.Atoi(strings.TrimSuffix(f[2], ",")); err != nil || f[3] != "unexpected" {
				return Run{}, bad("holds.lua summary", err)
			}
			if run.Unexpected, err = strconv.ParseInt(f[4], 10, 64); err != nil {
				return Run{}, bad("holds.lua summary", err)
			}
			have.summary = true
		}
	}
	if err := sc.Err(); err != nil {
		return Run{}, err
	}
	for _, m := range []struct {
		ok   bool
		what string
	}{
		{have.max, `the "Latency" row of Thread Stats`},
		{have.p50, "the 50% line of Latency Distribution (run wrk with --latency)"},
		{have.p99, "the 99% line of Latency Distribution (run wrk with --latency)"},
		{have.requests, `"N requests in"`},
		{have.rate, `"Requests/sec:"`},
		{have.summary, `holds.lua's "expected S, unexpected N" line (run wrk with -s bench/wrk/holds.lua)`},
	} {
		if !m.ok {
			return Run{}, fmt.Errorf("%w: missing %s", errMalformed, m.what)
		}
	}
	if run.Requests <= 0 || run.RequestsPerSec <= 0 {
		return Run{}, fmt.Errorf("%w: no request completed", errMalformed)
	}
	return run, nil
}

// parseSocketErrors reads "connect 0, read 0, write 0, timeout 12".
func parseSocketErrors(f []string, run *Run) error {
	if len(f) != 8 {
		return fmt.Errorf("want 4 name-count pairs, got %d fields", len(f))
	}
	for i := 0; i < len(f); i += 2 {
		n, err := strconv.ParseInt(strings.TrimSuffix(f[i+1], ","), 10, 64)
		if err != nil {
			return err
		}
		switch f[i] {
		case "connect", "read", "write":
		case "timeout":
			run.Timeouts = n
		default:
			return fmt.Errorf("unknown socket error %q", f[i])
		}
		run.SocketErrors += n
	}
	return nil
}

// wrkTimeUnits are the units wrk prints a time in (its format_time_us),
// in microseconds.
var wrkTimeUnits = []struct {
	suffix string
	micros float64
}{
	{"us", 1},
	{"ms", 1e3},
	{"s", 1e6},
	{"m", 60e6},
	{"h", 3600e6},
}

// parseMicros reads a wrk time such as "842.00us", "1.52ms", "2.01s" or
// "1.00m" as microseconds.
func parseMicros(s string) (int64, error) {
	for _, u := range wrkTimeUnits {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		// "ms" and "us" also end in "s": the number must then still parse.
		x, err := strconv.ParseFloat(num, 64)
		if err != nil {
			continue
		}
		if x < 0 || math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, fmt.Errorf("not a time: %q", s)
		}
		return int64(x*u.micros + 0.5), nil
	}
	return 0, fmt.Errorf("not a wrk time (a number and us, ms, s, m or h): %q", s)
}
