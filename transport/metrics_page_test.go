package transport

import (
	"testing"

	"github.com/flashsale/flashsale/bench/promtest"
	dto "github.com/prometheus/client_model/go"
)

// TestMetricsPageParsesAsPrometheus fetches the whole /metrics page over
// real HTTP and parses it with Prometheus's own parser: every family has
// HELP and TYPE, the counts are counters named _total (and only they are),
// the request latency is a histogram, and the engine's figures are there
// with the values the requests made.
func TestMetricsPageParsesAsPrometheus(t *testing.T) {
	ts := startServer(t, nil)
	id := ts.order(ts.hold(1, 2))
	ts.order(ts.hold(1, 1))
	ts.webhook("m1", `{"status":"success","order_id":`+id+`}`)
	ts.webhook("m1", `{"status":"success","order_id":`+id+`}`)
	ts.do("POST", "/api/holds", `{"product_id":2,"qty":5}`)

	m := ts.do("GET", "/metrics", "")
	if m.status != 200 {
		t.Fatalf("GET /metrics: %d", m.status)
	}
	fams := promtest.Parse(t, m.body)

	wantTypes := map[string]dto.MetricType{
		"flashsale_http_requests_total":            dto.MetricType_COUNTER,
		"flashsale_http_request_duration_seconds":  dto.MetricType_HISTOGRAM,
		"flashsale_holds_total":                    dto.MetricType_COUNTER,
		"flashsale_orders_total":                   dto.MetricType_COUNTER,
		"flashsale_webhooks_total":                 dto.MetricType_COUNTER,
		"flashsale_refunds_needed_total":           dto.MetricType_COUNTER,
		"flashsale_wal_records_replayed_total":     dto.MetricType_COUNTER,
		"flashsale_idempotency_keys_refused_total": dto.MetricType_COUNTER,
		"flashsale_orders":                         dto.MetricType_GAUGE,
		"flashsale_idempotency_keys":               dto.MetricType_GAUGE,
		"flashsale_idempotency_key_bytes":          dto.MetricType_GAUGE,
		"flashsale_idempotency_key_bytes_max":      dto.MetricType_GAUGE,
		"flashsale_replay_seconds":                 dto.MetricType_GAUGE,
		"flashsale_product_stock":                  dto.MetricType_GAUGE,
		"go_goroutines":                            dto.MetricType_GAUGE,
		"go_memstats_mallocs_total":                dto.MetricType_COUNTER,
		"go_gc_forced_total":                       dto.MetricType_COUNTER,
		"process_cpu_seconds_total":                dto.MetricType_COUNTER,
	}
	for name, typ := range wantTypes {
		if mf := fams[name]; mf == nil {
			t.Errorf("the page has no %s", name)
		} else if mf.GetType() != typ {
			t.Errorf("%s is a %s, want %s", name, mf.GetType(), typ)
		}
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"flashsale_holds_total", []string{"event", "created"}, 2},
		{"flashsale_orders_total", []string{"event", "created"}, 2},
		{"flashsale_orders_total", []string{"event", "paid"}, 1},
		{"flashsale_orders", []string{"status", "pending"}, 1},
		{"flashsale_webhooks_total", []string{"result", "replayed"}, 1},
		{"flashsale_idempotency_keys", nil, 1}, // the webhook's key
		{"flashsale_idempotency_key_bytes_max", nil, float64(ts.eng.IdempotencyKeyBytesMax())},
		{"flashsale_http_requests_total", []string{"route", "POST /api/holds", "status", "422"}, 1},
		{"flashsale_product_stock", []string{"product", "1", "kind", "sold"}, 2},
	} {
		if v, ok := promtest.Value(fams, c.name, c.labels...); !ok || v != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	if v, _ := promtest.Value(fams, "flashsale_idempotency_key_bytes"); v <= 0 {
		t.Errorf("flashsale_idempotency_key_bytes = %v with a key remembered", v)
	}
	var orders uint64
	for _, s := range fams["flashsale_http_request_duration_seconds"].GetMetric() {
		for _, lp := range s.GetLabel() {
			if lp.GetName() == "route" && lp.GetValue() == "POST /api/orders" {
				orders = s.GetHistogram().GetSampleCount()
			}
		}
	}
	if orders != 2 {
		t.Errorf("latency histogram of POST /api/orders counts %d requests, want 2", orders)
	}
}
