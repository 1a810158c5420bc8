package transport

import (
	"strconv"
	"testing"

	"github.com/flashsale/flashsale/engine"
)

// TestWebhookForOrderFarAheadIs404: over HTTP, a webhook for the highest
// order id handed out plus engine.OrderIDAheadMax is queued (202); one more
// is 404 order_not_found, queues nothing and writes nothing to the log.
func TestWebhookForOrderFarAheadIs404(t *testing.T) {
	ts := startServer(t, nil)
	highest, err := strconv.ParseUint(ts.order(ts.hold(1, 1)), 10, 64)
	if err != nil || ts.eng.HighestOrderID() != highest {
		t.Fatalf("order id %d (%v), engine's highest %d", highest, err, ts.eng.HighestOrderID())
	}
	body := func(id uint64) string {
		return `{"status":"success","order_id":` + strconv.FormatUint(id, 10) + `}`
	}
	before := ts.snapshot()
	expectError(t, ts.webhook("too-far", body(highest+engine.OrderIDAheadMax+1)), 404, "order_not_found", "")
	if after := ts.snapshot(); after != before {
		t.Fatalf("a webhook too far ahead changed state:\n%s\n%s", before, after)
	}
	if q := ts.eng.Stats().WebhooksQueued.Load(); q != 0 {
		t.Fatalf("%d webhooks queued", q)
	}
	m := expectStatus(t, ts.webhook("at-bound", body(highest+engine.OrderIDAheadMax)), 202)
	if m["status"] != "queued" {
		t.Fatalf("webhook at the bound: %v", m)
	}
}
