package bench

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// The --html page carries the run's figures and verdict, and loads
// nothing from anywhere: uPlot and the data are inline.
func TestHTMLReportIsSelfContained(t *testing.T) {
	res := &Result{Workload: "hot", Target: "127.0.0.1:1", Mode: "closed", Conns: 4, Requests: 300,
		Timeline: []IntervalResult{{StartSec: 0, DurationSec: 1, RequestsPerSec: 200, P50Micros: 900, P99Micros: 4000, MaxMicros: 7000},
			{StartSec: 1, DurationSec: 0.5, RequestsPerSec: 200, P50Micros: 800, P99Micros: 3000, MaxMicros: 5000}},
		Endpoints: []EndpointResult{{Endpoint: "POST /api/holds", Requests: 300,
			Latency: LatencySummary{P50Micros: 850, P90Micros: 2000, P99Micros: 3500, P999Micros: 6000, MaxMicros: 7000}}},
		Audit: AuditResult{OK: false, ViolationCount: 1, Violations: []string{"product 1: sold 11 of 10 <units>"}},
	}
	var buf bytes.Buffer
	if err := WriteHTML(&buf, res); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{"FAILED (1 violations)", "product 1: sold 11 of 10 &lt;units&gt;", "POST /api/holds", "var uPlot="} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:|//)`).FindString(page); m != "" {
		t.Errorf("the page loads something from elsewhere: %q", m)
	}
	m := regexp.MustCompile(`const data = (\{.*\});`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no data in the page")
	}
	var data struct {
		Timeline    struct{ T, RPS, P99 []float64 } `json:"timeline"`
		Percentiles struct {
			X         []float64 `json:"x"`
			Endpoints []struct {
				Name string    `json:"name"`
				Ms   []float64 `json:"ms"`
			} `json:"endpoints"`
		} `json:"percentiles"`
	}
	if err := json.Unmarshal([]byte(m[1]), &data); err != nil {
		t.Fatalf("the page's data is not JSON: %v", err)
	}
	if len(data.Timeline.T) != 2 || data.Timeline.T[1] != 1.5 || data.Timeline.P99[0] != 4 {
		t.Errorf("timeline %+v, want the two intervals (ends 1 and 1.5 s, p99 4 ms first)", data.Timeline)
	}
	if len(data.Percentiles.Endpoints) != 1 || len(data.Percentiles.Endpoints[0].Ms) != len(data.Percentiles.X) ||
		data.Percentiles.Endpoints[0].Ms[2] != 3.5 {
		t.Errorf("percentiles %+v, want p99 3.5 ms at the third point", data.Percentiles)
	}
}
