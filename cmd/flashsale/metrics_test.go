package main

import (
	"strings"
	"syscall"
	"testing"

	"github.com/flashsale/flashsale/bench/promtest"
	dto "github.com/prometheus/client_model/go"
)

// TestMetricsAfterSnapshotRestart runs the binary, leaves orders pending
// across a snapshot and a kill -9, and parses the restarted server's whole
// /metrics page with Prometheus's parser: the pending-orders gauge counts
// the pending orders (the counts since start restart from zero, so a gauge
// derived from them would not), and the log's families, the fsync
// histogram among them, are typed.
func TestMetricsAfterSnapshotRestart(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--data-dir", dir, "--snapshot-every", "20"}
	p := startProc(t, nil, args...)
	var orders []string
	for i := 0; i < 5; i++ {
		tok := field(t, p.expect(201, "POST", "/api/holds", `{"product_id":3,"qty":1}`), "hold_token")
		orders = append(orders, field(t, p.expect(201, "POST", "/api/orders", `{"hold_token":"`+tok+`"}`), "order_id"))
	}
	p.expect(200, "POST", "/api/payments/webhook", `{"status":"success","order_id":`+orders[0]+`}`, "Idempotency-Key", "m-paid")
	p.expect(200, "POST", "/api/payments/webhook", `{"status":"failure","order_id":`+orders[1]+`}`, "Idempotency-Key", "m-failed")
	for i := 0; i < 20; i++ { // records enough for a snapshot that holds the orders
		p.expect(201, "POST", "/api/holds", `{"product_id":3,"qty":1}`)
	}
	waitFor(t, "a snapshot", func() bool { return len(snapshotFiles(t, dir)) > 0 })
	live := promtest.Parse(t, p.expect(200, "GET", "/metrics", "").body)
	if v, _ := promtest.Value(live, "flashsale_orders", "status", "pending"); v != 3 {
		t.Fatalf("pending orders before the restart = %v, want 3", v)
	}
	p.stop(syscall.SIGKILL)

	q := startProc(t, nil, args...)
	if !strings.Contains(q.log(), "snapshot loaded") {
		t.Fatalf("the restart did not use a snapshot:\n%s", q.log())
	}
	fams := promtest.Parse(t, q.expect(200, "GET", "/metrics", "").body)
	if v, _ := promtest.Value(fams, "flashsale_orders", "status", "pending"); v != 3 {
		t.Fatalf("pending orders after the restart from a snapshot = %v, want 3", v)
	}
	q.expect(200, "POST", "/api/payments/webhook", `{"status":"success","order_id":`+orders[2]+`}`, "Idempotency-Key", "m-after")
	fams = promtest.Parse(t, q.expect(200, "GET", "/metrics", "").body)
	if v, _ := promtest.Value(fams, "flashsale_orders", "status", "pending"); v != 2 {
		t.Fatalf("pending orders after a payment = %v, want 2", v)
	}
	for name, typ := range map[string]dto.MetricType{
		"flashsale_wal_batches_total":        dto.MetricType_COUNTER,
		"flashsale_wal_records_total":        dto.MetricType_COUNTER,
		"flashsale_wal_commit_seconds_total": dto.MetricType_COUNTER,
		"flashsale_wal_batch_records_mean":   dto.MetricType_GAUGE,
		"flashsale_wal_last_index":           dto.MetricType_GAUGE,
		"flashsale_wal_dropped_records":      dto.MetricType_GAUGE,
		"flashsale_wal_fsync_seconds":        dto.MetricType_HISTOGRAM,
	} {
		if mf := fams[name]; mf == nil || mf.GetType() != typ {
			t.Errorf("%s: %v, want a %s", name, mf, typ)
		}
	}
	batches, _ := promtest.Value(fams, "flashsale_wal_batches_total")
	if h := fams["flashsale_wal_fsync_seconds"].GetMetric()[0].GetHistogram(); batches < 1 || float64(h.GetSampleCount()) != batches {
		t.Errorf("fsync histogram counts %d batches, the log wrote %v", h.GetSampleCount(), batches)
	}
	q.stop(syscall.SIGTERM)
}
