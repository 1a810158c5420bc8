// Command wrk (bench/wrk) turns the wrk outputs that bench/wrk/run.sh
// recorded into one Markdown table: per phase and connection count, the
// median over rounds of req/s, of the share of the ceiling (each round
// against the ceiling run of the same round with the same connections),
// of p50, p99 and max, the worst p99 and max of any round, and the answers
// that did not have the expected status.
//
//	go run ./bench/wrk DIR
//
// DIR holds one file per run, named PHASE.cCONNS.rROUND.txt, PHASE one of
// ceiling, granted (holds on a product that never sells out, every answer
// a 201) and sold_out (holds on a sold-out product, every answer a 409).
// It exits 1, after the table, if any answer had another status, if a run
// had socket errors (wrk leaves a timed-out request out of its latencies,
// so the tail would be understated), or if a file does not parse.
package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/flashsale/flashsale/bench"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench/wrk DIR (the wrk outputs bench/wrk/run.sh recorded)")
		os.Exit(2)
	}
	rows, err := ReadDir(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := WriteTable(os.Stdout, rows); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// phaseOrder is the order of the phases in the table, and the only names
// a file may carry.
var phaseOrder = []string{"ceiling", "granted", "sold_out"}

var runFileName = regexp.MustCompile(`^([a-z_]+)\.c([0-9]+)\.r([0-9]+)\.txt$`)

// Row is one phase at one connection count, its runs by round.
type Row struct {
	Phase  string
	Conns  int
	Rounds map[int]Run
}

// ReadDir parses every PHASE.cCONNS.rROUND.txt in dir into rows, ordered by
// connections, then phase as in phaseOrder. Any other file is an error, so
// that a misnamed run is not silently left out.
func ReadDir(dir string) ([]*Row, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	byKey := map[string]*Row{}
	var rows []*Row
	for _, e := range entries {
		m := runFileName.FindStringSubmatch(e.Name())
		if m == nil || !slices.Contains(phaseOrder, m[1]) {
			return nil, fmt.Errorf("%s: not a run file (want PHASE.cCONNS.rROUND.txt, PHASE one of %s)", e.Name(), strings.Join(phaseOrder, ", "))
		}
		conns, _ := strconv.Atoi(m[2])
		round, _ := strconv.Atoi(m[3])
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		run, err := Parse(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		key := m[1] + "/" + m[2]
		row := byKey[key]
		if row == nil {
			row = &Row{Phase: m[1], Conns: conns, Rounds: map[int]Run{}}
			byKey[key] = row
			rows = append(rows, row)
		}
		row.Rounds[round] = run
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: no run files", dir)
	}
	slices.SortFunc(rows, func(a, b *Row) int {
		return cmp.Or(cmp.Compare(a.Conns, b.Conns),
			cmp.Compare(slices.Index(phaseOrder, a.Phase), slices.Index(phaseOrder, b.Phase)))
	})
	return rows, nil
}

// Summary is a row's figures over its rounds.
type Summary struct {
	RequestsPerSec    float64 // median
	RatioToCeiling    float64 // median of per-round ratios; 0 without a ceiling run
	P50Micros         int64   // median
	P99Micros         int64   // median
	MaxMicros         int64   // median
	WorstP99Micros    int64
	WorstMaxMicros    int64
	Unexpected        int64 // summed over rounds
	SocketErrors      int64 // summed over rounds
	PerRoundPerSecond []float64
}

// Summarize computes a row's figures; ceiling is the ceiling row with the
// same connections (nil if there is none, or for the ceiling itself).
func Summarize(row, ceiling *Row) Summary {
	var s Summary
	var p50s, p99s, maxes []int64
	var ratios []float64
	for _, round := range slices.Sorted(maps.Keys(row.Rounds)) {
		r := row.Rounds[round]
		s.PerRoundPerSecond = append(s.PerRoundPerSecond, r.RequestsPerSec)
		p50s, p99s, maxes = append(p50s, r.P50Micros), append(p99s, r.P99Micros), append(maxes, r.MaxMicros)
		s.WorstP99Micros = max(s.WorstP99Micros, r.P99Micros)
		s.WorstMaxMicros = max(s.WorstMaxMicros, r.MaxMicros)
		s.Unexpected += r.Unexpected
		s.SocketErrors += r.SocketErrors
		if ceiling != nil {
			if c, ok := ceiling.Rounds[round]; ok {
				ratios = append(ratios, r.RequestsPerSec/c.RequestsPerSec)
			}
		}
	}
	s.RequestsPerSec = bench.Median(s.PerRoundPerSecond)
	s.RatioToCeiling = bench.Median(ratios)
	s.P50Micros, s.P99Micros, s.MaxMicros = bench.Median(p50s), bench.Median(p99s), bench.Median(maxes)
	return s
}

// WriteTable prints the rows as a Markdown table and returns an error
// naming every row with answers of another status or socket errors.
func WriteTable(out io.Writer, rows []*Row) error {
	ceilings := map[int]*Row{}
	for _, r := range rows {
		if r.Phase == "ceiling" {
			ceilings[r.Conns] = r
		}
	}
	fmt.Fprintln(out, "| phase | conns | rounds | req/s | share of ceiling | p50 | p99 | max | worst p99 | worst max | not the expected status | socket errors | req/s per round |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	var problems []error
	for _, r := range rows {
		var ceiling *Row
		if r.Phase != "ceiling" {
			ceiling = ceilings[r.Conns]
		}
		s := Summarize(r, ceiling)
		share := "—"
		switch {
		case r.Phase == "ceiling":
			share = "100%"
		case ceiling != nil:
			share = fmt.Sprintf("%.0f%%", 100*s.RatioToCeiling)
		}
		perRound := make([]string, len(s.PerRoundPerSecond))
		for i, x := range s.PerRoundPerSecond {
			perRound[i] = fmt.Sprintf("%.0f", x)
		}
		fmt.Fprintf(out, "| %s | %d | %d | %.0f | %s | %s | %s | %s | %s | %s | %d | %d | %s |\n",
			r.Phase, r.Conns, len(r.Rounds), s.RequestsPerSec, share,
			bench.FormatMicros(s.P50Micros), bench.FormatMicros(s.P99Micros), bench.FormatMicros(s.MaxMicros),
			bench.FormatMicros(s.WorstP99Micros), bench.FormatMicros(s.WorstMaxMicros),
			s.Unexpected, s.SocketErrors, strings.Join(perRound, ", "))
		if s.Unexpected > 0 {
			problems = append(problems, fmt.Errorf("%s at %d connections: %d answers without the expected status", r.Phase, r.Conns, s.Unexpected))
		}
		if s.SocketErrors > 0 {
			problems = append(problems, fmt.Errorf("%s at %d connections: %d socket errors (timeouts are left out of wrk's latencies)", r.Phase, r.Conns, s.SocketErrors))
		}
	}
	return errors.Join(problems...)
}
