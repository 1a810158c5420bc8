package transport

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// dashStats is GET /dashboard/stats decoded.
type dashStats struct {
	NowMs            int64                 `json:"now_ms"`
	Mode             string                `json:"mode"`
	SampleIntervalMs int64                 `json:"sample_interval_ms"`
	HistorySamples   int                   `json:"history_samples"`
	ProductsStale    bool                  `json:"products_stale"`
	Products         []map[string]any      `json:"products"`
	Totals           map[string]int64      `json:"totals"`
	Cluster          json.RawMessage       `json:"cluster"`
	Series           map[string][]*float64 `json:"series"`
}

func (ts *testServer) dashStats(query string) dashStats {
	ts.t.Helper()
	r := ts.do("GET", "/dashboard/stats"+query, "")
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
		ts.t.Fatalf("GET /dashboard/stats%s: %d %s %s", query, r.status, r.header.Get("Content-Type"), r.body)
	}
	var s dashStats
	if err := json.Unmarshal(r.body, &s); err != nil {
		ts.t.Fatalf("stats are not JSON: %v: %s", err, r.body)
	}
	return s
}

// TestDashboardPageAndAssets: GET / sends the operator to /dashboard, the
// page is served with a same-origin-only CSP, and every file it references
// is served from the binary with its content type; nothing it loads is on
// another site.
func TestDashboardPageAndAssets(t *testing.T) {
	ts := startServer(t, nil)

	noFollow := &http.Client{Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(ts.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/dashboard" {
		t.Fatalf("GET / = %d Location %q, want 302 /dashboard", resp.StatusCode, resp.Header.Get("Location"))
	}

	page := ts.do("GET", "/dashboard", "")
	if page.status != 200 || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /dashboard = %d %q", page.status, page.header.Get("Content-Type"))
	}
	if csp := page.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(string(page.body), -1)
	wantType := map[string]string{".js": "text/javascript", ".css": "text/css", ".uplot": "text/plain"}
	assets := 0
	for _, m := range refs {
		ref := m[1]
		if strings.HasPrefix(ref, "data:") || ref == "/metrics" || ref == "/dashboard/stats" {
			continue
		}
		if !strings.HasPrefix(ref, "/dashboard/assets/") {
			t.Errorf("the page references %q, not one of its embedded files", ref)
			continue
		}
		assets++
		r := ts.do("GET", ref, "")
		ext := ref[strings.LastIndex(ref, "."):]
		if r.status != 200 || len(r.body) == 0 || !strings.HasPrefix(r.header.Get("Content-Type"), wantType[ext]) {
			t.Errorf("GET %s = %d, %d bytes, %q", ref, r.status, len(r.body), r.header.Get("Content-Type"))
		}
	}
	if assets < 5 { // uPlot's script, style sheet and licence, ours
		t.Errorf("the page references %d assets: %v", assets, refs)
	}
	if r := ts.do("GET", "/dashboard/assets/uPlot.iife.min.js", ""); !strings.Contains(string(r.body), "uPlot") {
		t.Errorf("uPlot's script is not served")
	}
	expectError(t, ts.do("GET", "/dashboard/assets/nope.js", ""), 404, "not_found", "")
	expectError(t, ts.do("GET", "/dashboard/assets/README.md", ""), 404, "not_found", "")
}

// TestDashboardStatsFigures: the stats show the stock GET /api/products
// shows, and the recorded samples show the holds, refusals, latencies and
// queued webhooks of the traffic between two samples.
func TestDashboardStatsFigures(t *testing.T) {
	ts := startServer(t, nil)
	s := ts.dashStats("")
	if s.Mode != "single" || s.SampleIntervalMs != 1000 || s.HistorySamples != dashboardHistorySamples || string(s.Cluster) != "null" {
		t.Fatalf("stats header: %+v", s)
	}
	if len(s.Series["t"]) != 0 {
		t.Fatalf("samples without a recorder: %v", s.Series["t"])
	}
	// A log's figures, as the binary registers them (cmd/flashsale's
	// walmetrics.go): the dashboard reads them from the metric set's text.
	var walBatches, walRecords atomic.Int64
	var fsyncCounts [3]atomic.Uint64 // <= 1 ms, <= 10 ms, above
	ts.srv.AddCounter("flashsale_wal_batches_total", "test", Series{Value: func() float64 { return float64(walBatches.Load()) }})
	ts.srv.AddCounter("flashsale_wal_records_total", "test", Series{Value: func() float64 { return float64(walRecords.Load()) }})
	ts.srv.AddHistogram("flashsale_wal_fsync_seconds", "test", func() Histogram {
		return Histogram{UpperBounds: []float64{0.001, 0.01},
			Counts: []uint64{fsyncCounts[0].Load(), fsyncCounts[1].Load(), fsyncCounts[2].Load()}}
	})

	t0 := time.Now()
	ts.srv.recordDashboardSample(t0)
	// 10 batches of 40 records over the 2 seconds; fsyncs: 5 under 1 ms,
	// 5 in (1, 10] ms.
	walBatches.Add(10)
	walRecords.Add(400)
	fsyncCounts[0].Add(5)
	fsyncCounts[1].Add(5)
	for range 6 {
		ts.hold(1, 2)
	}
	for range 6 { // 10 units of product 2: the sixth is refused
		ts.do("POST", "/api/holds", `{"product_id":2,"qty":2}`)
	}
	for range 3 { // refused: 422
		ts.do("POST", "/api/holds", `{"product_id":1,"qty":0}`)
	}
	expectStatus(t, ts.webhook("evt-q", `{"status":"success","order_id":999}`), 202)
	ts.srv.recordDashboardSample(t0.Add(2 * time.Second))

	s = ts.dashStats("")
	list := ts.do("GET", "/api/products", "").json(t)["products"].([]any)
	if len(s.Products) != len(list) {
		t.Fatalf("stats list %d products, the API %d", len(s.Products), len(list))
	}
	for i, p := range list {
		for _, f := range []string{"id", "total_stock", "available_stock", "reserved_stock", "sold_stock"} {
			if got, want := fmt.Sprint(s.Products[i][f]), fmt.Sprint(p.(map[string]any)[f]); got != want {
				t.Errorf("product %d %s: stats %s, API %s", i, f, got, want)
			}
		}
	}
	if s.Totals["holds_created"] != 11 || s.Totals["webhooks_queued"] != 1 {
		t.Errorf("totals %v: want 11 holds created, 1 webhook queued", s.Totals)
	}
	if n := len(s.Series["t"]); n != 1 {
		t.Fatalf("%d samples after two readings, want 1", n)
	}
	at := func(name string) float64 {
		v := s.Series[name]
		if len(v) != 1 || v[0] == nil {
			t.Fatalf("series %s = %v", name, v)
		}
		return *v[0]
	}
	if got := at("t"); got != float64(t0.Add(2*time.Second).UnixMilli())/1000 {
		t.Errorf("t = %v", got)
	}
	// Over 2 seconds: 11 holds granted (6 + 5), 1 refused with 409, 3 with 422.
	for name, want := range map[string]float64{"holds": 5.5, "refused_conflict": 0.5, "refused_client": 1.5,
		"refused_busy": 0, "errors": 0, "webhooks": 0.5, "webhooks_queued": 1,
		"fsyncs": 5, "wal_batch_records": 40, "fsync_p50_ms": 1, "fsync_p99_ms": 1 + 9*0.98} {
		if got := at(name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if p50, p99 := at("p50_ms_holds"), at("p99_ms_holds"); !(p50 > 0 && p50 <= p99 && p99 <= 10000) {
		t.Errorf("hold latency p50 %v ms, p99 %v ms", p50, p99)
	}
	if v := s.Series["p99_ms_orders"]; v[0] != nil {
		t.Errorf("order p99 %v without any order", *v[0])
	}
	if v := s.Series["raft_proposals_per_fsync"]; v[0] != nil { // no Raft log in this server
		t.Errorf("raft_proposals_per_fsync %v without a Raft log", *v[0])
	}

	// since: only newer samples; a bad since is refused.
	if s := ts.dashStats(fmt.Sprintf("?since=%d", t0.Add(2*time.Second).UnixMilli())); len(s.Series["t"]) != 0 {
		t.Errorf("since the last sample: %v", s.Series["t"])
	}
	if s := ts.dashStats(fmt.Sprintf("?since=%d", t0.UnixMilli())); len(s.Series["t"]) != 1 {
		t.Errorf("since before the last sample: %v", s.Series["t"])
	}
	for _, q := range []string{"?since=-1", "?since=x", "?since=", "?since=1.5"} {
		expectError(t, ts.do("GET", "/dashboard/stats"+q, ""), 422, "validation_failed", "since")
	}
}

// TestDashboardHistoryBounded: the ring keeps the last
// dashboardHistorySamples samples, oldest first, and a pause of
// dashboardGapInterval or more gives a sample without rates.
func TestDashboardHistoryBounded(t *testing.T) {
	ts := startServer(t, nil)
	t0 := time.UnixMilli(1_700_000_000_000)
	const extra = 25
	for i := range dashboardHistorySamples + extra + 1 {
		ts.srv.recordDashboardSample(t0.Add(time.Duration(i) * time.Second))
	}
	s := ts.dashStats("")
	tt := s.Series["t"]
	if len(tt) != dashboardHistorySamples {
		t.Fatalf("%d samples, want %d", len(tt), dashboardHistorySamples)
	}
	for i, v := range tt {
		want := float64(t0.Add(time.Duration(extra+1+i)*time.Second).UnixMilli()) / 1000
		if v == nil || *v != want {
			t.Fatalf("sample %d at %v, want %v", i, v, want)
		}
	}
	for name, col := range s.Series {
		if len(col) != dashboardHistorySamples {
			t.Errorf("series %s has %d values", name, len(col))
		}
	}
	last := t0.Add(time.Duration(dashboardHistorySamples+extra) * time.Second)
	ts.srv.recordDashboardSample(last.Add(dashboardGapInterval))
	s = ts.dashStats(fmt.Sprintf("?since=%d", last.UnixMilli()))
	if h := s.Series["holds"]; len(h) != 1 || h[0] != nil {
		t.Errorf("after a gap: holds %v, want [null]", h)
	}
	if s := ts.dashStats(fmt.Sprintf("?since=%d", last.Add(-time.Second).UnixMilli())); s.Series["holds"][0] == nil {
		t.Errorf("a one-second sample has no rate")
	}
}

// TestDashboardRecorder: RecordDashboard samples once a second until
// stopped, and stop waits for it (TestMain's goleak checks it is gone).
func TestDashboardRecorder(t *testing.T) {
	ts := startServer(t, nil)
	stop := ts.srv.RecordDashboard()
	defer stop()
	waitFor(t, 5*time.Second, "two samples", func() bool { return len(ts.dashStats("").Series["t"]) >= 2 })
	stop()
	n := len(ts.dashStats("").Series["t"])
	time.Sleep(1200 * time.Millisecond)
	if m := len(ts.dashStats("").Series["t"]); m != n {
		t.Errorf("%d samples after stop, then %d", n, m)
	}
}

func TestQuantileDelta(t *testing.T) {
	upper := []float64{0.001, 0.01, 0.1, math.Inf(1)}
	prev := dashHistogram{upper: upper, counts: []float64{5, 5, 5, 5}}
	// 100 new observations: 50 under 1 ms, 40 in (1, 10] ms, 9 in (10, 100] ms, 1 above.
	cur := dashHistogram{upper: upper, counts: []float64{55, 95, 104, 105}}
	for _, c := range []struct{ q, want float64 }{
		{0.50, 0.001},           // the 50th is the last under 1 ms
		{0.70, 0.001 + 0.009/2}, // half way through (1, 10] ms
		{0.99, 0.1},             // the 99th is the last under 100 ms
		{1.00, 0.1},             // above the last bound: the bound
	} {
		if got := quantileDelta(&prev, &cur, c.q); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("q%v = %v, want %v", c.q, got, c.want)
		}
	}
	if got := quantileDelta(&prev, &prev, 0.5); !math.IsNaN(got) {
		t.Errorf("no observation: %v, want NaN", got)
	}
}

func TestParseMetricLine(t *testing.T) {
	name, labels, v, ok := parseMetricLine([]byte(`flashsale_http_request_duration_seconds_bucket{route="GET /api/products/{id}",le="0.005"} 42`))
	if !ok || string(name) != "flashsale_http_request_duration_seconds_bucket" || v != 42 ||
		string(labelValue(labels, "route")) != "GET /api/products/{id}" || string(labelValue(labels, "le")) != "0.005" {
		t.Fatalf("%q %q %v %v", name, labels, v, ok)
	}
	name, labels, v, ok = parseMetricLine([]byte(`flashsale_x{a="q\"}{ ",b="2"} 1.5e3 1700000000`))
	if !ok || string(name) != "flashsale_x" || v != 1500 || string(labelValue(labels, "b")) != "2" || labelValue(labels, "c") != nil {
		t.Fatalf("%q %q %v %v", name, labels, v, ok)
	}
	if _, _, v, ok := parseMetricLine([]byte(`flashsale_wal_batches_total 7`)); !ok || v != 7 {
		t.Fatalf("plain: %v %v", v, ok)
	}
	for _, bad := range []string{`x{a="1" 2`, `x{a="1"}`, ` 1`, `x{a="1"} nope`} {
		if _, _, _, ok := parseMetricLine([]byte(bad)); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}
