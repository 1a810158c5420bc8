package bench

import hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

// phase is one part of a hot-family run (hot, grants), told apart by the
// status of each answer rather than by a cut in time, so that every answer
// belongs to exactly one phase and its latency to one histogram:
//
//   - granted: every hold answered 201. It lasts from the start of the load
//     to the last 201 answer, so holds per second count 201s only.
//   - sold out: every hold answered 409 insufficient_stock. It lasts from the
//     first such answer (the sell-out, as the client saw it) to the end of
//     the load.
//
// The two spans overlap by the holds in flight at the sell-out (a 201 may
// arrive just after the first 409). Other answers (no answer, 5xx, other
// errors) belong to neither phase; they are in the endpoint rows and the
// error list.
type phase uint8

const (
	phaseGranted phase = iota
	phaseSoldOut
	phaseCount
)

// phaseNames are the names of the phases in the JSON output (PhaseResult.Phase).
var phaseNames = [phaseCount]string{phaseGranted: "granted", phaseSoldOut: "sold_out"}

// phaseStatus is the HTTP status of the answers each phase counts.
var phaseStatus = [phaseCount]int{phaseGranted: 201, phaseSoldOut: 409}

// phaseLabels name the phases in the text report.
var phaseLabels = [phaseCount]string{phaseGranted: "granted (201)", phaseSoldOut: "sold out (409)"}

// PhaseResult is one phase of a hot-family run: the answers of one status,
// over the span of the load in which they arrived.
type PhaseResult struct {
	Phase          string         `json:"phase"`  // "granted" or "sold_out"
	Status         int            `json:"status"` // the answers it counts: 201, or 409 insufficient_stock
	StartSec       float64        `json:"start_sec"`
	EndSec         float64        `json:"end_sec"` // since the load began
	ElapsedSec     float64        `json:"elapsed_sec"`
	Requests       int64          `json:"requests"`
	RequestsPerSec float64        `json:"requests_per_sec"`
	Latency        LatencySummary `json:"latency"`
	// CeilingRatio is RequestsPerSec over the ceiling's requests per second,
	// when a ceiling was measured alongside (--with-ceiling).
	CeilingRatio float64 `json:"ceiling_ratio,omitempty"`
}

// phaseResults builds the phases of a run whose load lasted loadSec, given
// each phase's merged histogram, the time of the last 201 answer and of the
// first 409 insufficient_stock answer (0: none), in seconds since the start.
func phaseResults(hists [phaseCount]*hdrhistogram.Histogram, loadSec, lastGrantSec, soldOutSec float64) []PhaseResult {
	spans := [phaseCount][2]float64{phaseGranted: {0, lastGrantSec}}
	if soldOutSec > 0 {
		spans[phaseSoldOut] = [2]float64{soldOutSec, max(loadSec, soldOutSec)}
	}
	out := make([]PhaseResult, phaseCount)
	for p := range out {
		lat := summarize(hists[p])
		elapsed := spans[p][1] - spans[p][0]
		out[p] = PhaseResult{
			Phase:          phaseNames[p],
			Status:         phaseStatus[p],
			StartSec:       spans[p][0],
			EndSec:         spans[p][1],
			ElapsedSec:     elapsed,
			Requests:       lat.Count,
			RequestsPerSec: perSec(lat.Count, elapsed),
			Latency:        lat,
		}
	}
	return out
}

// setCeilingRatios fills each phase's share of a ceiling of ceilingPerSec.
func setCeilingRatios(phases []PhaseResult, ceilingPerSec float64) {
	if ceilingPerSec <= 0 {
		return
	}
	for i := range phases {
		phases[i].CeilingRatio = phases[i].RequestsPerSec / ceilingPerSec
	}
}

// phaseLabel returns the text report's name of the phase named name.
func phaseLabel(name string) string {
	for p, n := range phaseNames {
		if n == name {
			return phaseLabels[p]
		}
	}
	return name
}
