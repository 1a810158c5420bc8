package bench

import (
	"bytes"
	"strings"
	"testing"
)

func TestTableShowsEveryFigureAndTheAuditVerdict(t *testing.T) {
	res := &Result{
		Workload: "hot", Target: "127.0.0.1:1", Mode: "open", RatePerSec: 100, Conns: 4, DurationSec: 2,
		Ops: 150, MissedArrivals: 50, Requests: 150, RequestsPerSec: 75,
		Latency: LatencySummary{P50Micros: 900, P90Micros: 1500, P99Micros: 2500, P999Micros: 40_000, MaxMicros: 1_500_000},
		Endpoints: []EndpointResult{{Endpoint: EndpointHoldCreate.String(), Requests: 150, RequestsPerSec: 75,
			Latency: LatencySummary{P50Micros: 900, P99Micros: 2500}}},
		Errors: []ErrorCount{{Endpoint: EndpointHoldCreate.String(), Status: 409, Code: "insufficient_stock", Count: 140},
			{Endpoint: EndpointHoldCreate.String(), Status: 0, Count: 2}},
		Hot: &HotResult{ProductID: 9, StockAtStart: 10, UnitsGranted: 10, GrantedEqualsStock: true, SoldOut: true,
			SellOutMillis: 12.5, RejectsAfterSold: 140, RejectShareAfter: 1,
			Phases: []PhaseResult{
				{Phase: "granted", Status: 201, EndSec: 0.0125, Requests: 10, RequestsPerSec: 800, CeilingRatio: 5.33,
					Latency: LatencySummary{P50Micros: 3100, MaxMicros: 7700}},
				{Phase: "sold_out", Status: 409, StartSec: 0.0125, EndSec: 2, Requests: 140, RequestsPerSec: 70.4, CeilingRatio: 0.47},
			}},
		Timeline: []IntervalResult{{DurationSec: 1, Requests: 100, MaxMicros: 2000}, {StartSec: 1, DurationSec: 1, Requests: 50, P99Micros: 9000, MaxMicros: 1_500_000}},
		Ceiling:  &CeilingResult{RequestsPerSec: 150, Ratio: 0.5},
		Audit:    AuditResult{ViolationCount: 3, Violations: []string{"product 9: oversold"}},
	}
	var out bytes.Buffer
	WriteTable(&out, res)
	got := out.String()
	for _, want := range []string{
		"open loop at 100 ops/s", "POST /api/holds", "900µs", "2.50ms", "40.00ms", "1.50s",
		"409", "insufficient_stock", "no answer", "missed arrivals: 50", "fell behind",
		"granted 10 (equals stock: true)", "sold out after 12.5 ms",
		"granted (201)", "5.33", "3.10ms", "7.70ms", "sold out (409)", "0.47", "whole run", "0.50",
		"granted (201) phase: 10 answers 201 from 0.000 s to 0.013 s", "sold out (409) phase: 140 answers 409 from 0.013 s to 2.000 s",
		"timeline: 2 intervals; the slowest request finished in 1.0–2.0 s: max 1.50s, p99 9.00ms",
		"audit: FAILED, 3 violations", "product 9: oversold", "and 2 more",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	res.Audit = AuditResult{OK: true, Products: []ProductAudit{{}}}
	out.Reset()
	WriteTable(&out, res)
	if !strings.Contains(out.String(), "audit: OK (1 products checked)") {
		t.Errorf("clean audit not shown:\n%s", out.String())
	}
}
