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
			SellOutMillis: 12.5, RejectsAfterSold: 140, RejectShareAfter: 1},
		Audit: AuditResult{ViolationCount: 3, Violations: []string{"product 9: oversold"}},
	}
	var out bytes.Buffer
	WriteTable(&out, res)
	got := out.String()
	for _, want := range []string{
		"open loop at 100 ops/s", "POST /api/holds", "900µs", "2.50ms", "40.00ms", "1.50s",
		"409", "insufficient_stock", "no answer", "missed arrivals: 50", "fell behind",
		"granted 10 (equals stock: true)", "sold out after 12.5 ms",
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
