package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
)

// suiteWorkloads are the workloads of a suite round, in the order they run.
var suiteWorkloads = []string{"ceiling", "browse", "hot", "grants", "checkout"}

// suiteRowPhases are the rows a workload's runs give in the summary: the
// whole run for most; hot's granted and sold-out phases apart, since one
// mixes a short run of 201s with a long run of cheap 409s; and grants' 201s.
var suiteRowPhases = map[string][]string{
	"hot":    {phaseNames[phaseGranted], phaseNames[phaseSoldOut]},
	"grants": {phaseNames[phaseGranted]},
}

// phaseAll is the phase of a suite row that covers every request of a run.
const phaseAll = "all"

// SuiteRow is one workload's figures, in one phase, over all rounds of a
// suite.
type SuiteRow struct {
	Workload string `json:"workload"`
	// Phase is "all" (every request of the run), or for hot and grants
	// "granted" (the 201s) or "sold_out" (the 409 insufficient_stock).
	Phase                string    `json:"phase"`
	RequestsPerSec       []float64 `json:"requests_per_sec"` // one per round
	MedianRequestsPerSec float64   `json:"median_requests_per_sec"`
	// RatioToCeiling is the median over rounds of this workload's req/s
	// over the same round's ceiling req/s: runs of one round are close in
	// time, so a noisy neighbour weighs on both sides of each ratio.
	RatioToCeiling  float64 `json:"ratio_to_ceiling"`
	MedianP50Micros int64   `json:"median_p50_micros"`
	MedianP99Micros int64   `json:"median_p99_micros"`
	MedianMaxMicros int64   `json:"median_max_micros"`
	Violations      int64   `json:"violations"`
}

// SuiteResult is a whole suite: the summary rows and every run's result.
type SuiteResult struct {
	Rounds      int        `json:"rounds"`
	Conns       int        `json:"conns"`
	DurationSec float64    `json:"duration_sec"`
	Rows        []SuiteRow `json:"rows"`
	Runs        []*Result  `json:"runs"`
}

// OK reports a suite without violations.
func (s *SuiteResult) OK() bool {
	for _, r := range s.Rows {
		if r.Violations > 0 {
			return false
		}
	}
	return true
}

// RunSuite runs rounds rounds of ceiling, browse, hot, grants and checkout
// with cfg's URL, duration and connections, interleaved so that a noisy
// neighbour hurts every workload alike, and prints a Markdown table of the
// medians with each row's throughput as a share of the ceiling's. Hot and
// grants need cfg.AdminToken: each round hot sells out a product of its own
// (cfg.HotStock units) and grants holds units of one that never sells out
// (grantsStock units); without it both are left out.
func RunSuite(ctx context.Context, cfg Config, rounds int, out io.Writer) (*SuiteResult, error) {
	cfg = cfg.withDefaults()
	cfg.Progress, cfg.JSONPath, cfg.HTMLPath, cfg.WithCeiling, cfg.ProductID = false, "", "", false, 0
	if rounds < 1 {
		rounds = 1
	}
	workloads := suiteWorkloads
	if cfg.AdminToken == "" {
		workloads = slices.DeleteFunc(slices.Clone(workloads), func(w string) bool { return w == "hot" || w == "grants" })
		fmt.Fprintln(out, "suite: no --admin-token, so hot and grants are left out (they need a fresh product each round)")
	}
	suite := &SuiteResult{Rounds: rounds, Conns: cfg.Conns, DurationSec: cfg.Duration.Seconds()}
	byWorkload := map[string][]*Result{}
	for round := 1; round <= rounds; round++ {
		for _, name := range workloads {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("suite interrupted: %w", err)
			}
			c := cfg
			c.Workload = name
			if err := c.validate(); err != nil {
				return nil, err
			}
			res, err := runOnce(ctx, c, out)
			if err != nil {
				return nil, fmt.Errorf("suite round %d, %s: %w", round, name, err)
			}
			for _, ph := range rowPhases(name) {
				rps, lat := runFigures(res, ph)
				fmt.Fprintf(out, "round %d %-8s %-8s %8.0f req/s  p50 %-8s p99 %-8s max %-8s audit ok: %v\n", round, name, ph,
					rps, formatMicros(lat.P50Micros), formatMicros(lat.P99Micros), formatMicros(lat.MaxMicros), res.Audit.OK)
			}
			suite.Runs = append(suite.Runs, res)
			byWorkload[name] = append(byWorkload[name], res)
		}
	}
	for _, name := range workloads {
		for _, ph := range rowPhases(name) {
			suite.Rows = append(suite.Rows, summarizeRuns(name, ph, byWorkload[name]))
		}
	}
	ceiling := suite.Rows[0].RequestsPerSec
	for i := range suite.Rows {
		var ratios []float64
		for round, rps := range suite.Rows[i].RequestsPerSec {
			if ceiling[round] > 0 {
				ratios = append(ratios, rps/ceiling[round])
			}
		}
		suite.Rows[i].RatioToCeiling = median(ratios)
	}
	WriteSuiteTable(out, suite)
	return suite, nil
}

// rowPhases returns the phases of the rows workload name gives.
func rowPhases(name string) []string {
	if ps, ok := suiteRowPhases[name]; ok {
		return ps
	}
	return []string{phaseAll}
}

// runFigures returns one run's requests per second and latency in phase ph.
func runFigures(r *Result, ph string) (float64, LatencySummary) {
	if ph == phaseAll || r.Hot == nil {
		return r.RequestsPerSec, r.Latency
	}
	p := r.Hot.Phase(ph)
	return p.RequestsPerSec, p.Latency
}

// summarizeRuns takes the medians of one workload's runs in phase ph.
func summarizeRuns(name, ph string, runs []*Result) SuiteRow {
	row := SuiteRow{Workload: name, Phase: ph}
	var p50s, p99s, maxes []int64
	for _, r := range runs {
		rps, lat := runFigures(r, ph)
		row.RequestsPerSec = append(row.RequestsPerSec, rps)
		p50s = append(p50s, lat.P50Micros)
		p99s = append(p99s, lat.P99Micros)
		maxes = append(maxes, lat.MaxMicros)
		row.Violations += r.Audit.ViolationCount
	}
	row.MedianRequestsPerSec = median(row.RequestsPerSec)
	row.MedianP50Micros = median(p50s)
	row.MedianP99Micros = median(p99s)
	row.MedianMaxMicros = median(maxes)
	return row
}

// median returns the middle value of xs (the mean of the two middle values
// for an even count), without reordering xs.
func median[T int64 | float64](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// WriteSuiteTable prints the suite's summary as a Markdown table.
func WriteSuiteTable(out io.Writer, s *SuiteResult) {
	fmt.Fprintf(out, "\n%d rounds, %d conns, %.1f s per run; medians\n\n", s.Rounds, s.Conns, s.DurationSec)
	fmt.Fprintln(out, "| workload | phase | req/s | share of ceiling (per round) | p50 | p99 | max | violations | req/s per round |")
	fmt.Fprintln(out, "|---|---|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range s.Rows {
		perRound := ""
		for i, x := range r.RequestsPerSec {
			if i > 0 {
				perRound += ", "
			}
			perRound += fmt.Sprintf("%.0f", x)
		}
		fmt.Fprintf(out, "| %s | %s | %.0f | %.0f%% | %s | %s | %s | %d | %s |\n", r.Workload, r.Phase, r.MedianRequestsPerSec,
			100*r.RatioToCeiling, formatMicros(r.MedianP50Micros), formatMicros(r.MedianP99Micros), formatMicros(r.MedianMaxMicros),
			r.Violations, perRound)
	}
}
