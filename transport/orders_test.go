package transport

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestOrderLifecycle: 201 on first use of a hold, 200 with the same order on
// a repeat, the hold reads as ordered, and the order reads back.
func TestOrderLifecycle(t *testing.T) {
	ts := startServer(t, nil)
	token := ts.hold(1, 2)
	first := ts.do("POST", "/api/orders", `{"hold_token":"`+token+`"}`)
	o := expectStatus(t, first, 201)
	if num(t, o, "amount_cents") != 2*4999 || num(t, o, "qty") != 2 || num(t, o, "product_id") != 1 ||
		o["status"] != "pending" || o["hold_token"] != token || num(t, o, "order_id") < 1 {
		t.Fatalf("bad order %s", first.body)
	}
	for _, f := range []string{"created_at", "updated_at"} {
		if !millisRFC3339.MatchString(o[f].(string)) {
			t.Errorf("%s = %v", f, o[f])
		}
	}
	if _, ok := o["failure_reason"]; ok {
		t.Errorf("failure_reason present on a pending order: %s", first.body)
	}
	again := ts.do("POST", "/api/orders", `{"hold_token":"`+token+`"}`)
	if again.status != 200 || !bytes.Equal(again.body, first.body) {
		t.Fatalf("repeat: %d %s, want 200 %s", again.status, again.body, first.body)
	}
	id := o["order_id"].(interface{ String() string }).String()
	read := ts.do("GET", "/api/orders/"+id, "")
	if read.status != 200 || !bytes.Equal(read.body, first.body) {
		t.Fatalf("GET order: %d %s", read.status, read.body)
	}
	h := expectStatus(t, ts.do("GET", "/api/holds/"+token, ""), 200)
	if h["status"] != "ordered" || h["order_id"].(interface{ String() string }).String() != id {
		t.Fatalf("hold after order: %v", h)
	}
	ts.expectStock("1", 98, 2, 0)

	// Posting the token again returns the order as it is now.
	expectStatus(t, ts.webhook("pay-1", `{"status":"success","order_id":`+id+`}`), 200)
	now := expectStatus(t, ts.do("POST", "/api/orders", `{"hold_token":"`+token+`"}`), 200)
	if now["status"] != "paid" {
		t.Fatalf("order after payment: %v", now)
	}
	ts.expectStock("1", 98, 0, 2)
}

// TestOrderTTL: a pending order with no payment is cancelled with
// payment_timeout and its units come back; a late success changes nothing
// and is reported as needing a refund; the hold stays ordered.
func TestOrderTTL(t *testing.T) {
	ts := startServer(t, func(s *serverSetup) { s.cfg.OrderTTL = 300 * time.Millisecond })
	token := ts.hold(1, 3)
	id := ts.order(token)
	ts.expectStock("1", 97, 3, 0)
	waitFor(t, 3*time.Second, "the order to time out", func() bool {
		return ts.do("GET", "/api/orders/"+id, "").json(t)["status"] == "cancelled"
	})
	o := ts.do("GET", "/api/orders/"+id, "").json(t)
	if o["failure_reason"] != "payment_timeout" {
		t.Errorf("failure_reason = %v", o["failure_reason"])
	}
	ts.expectStock("1", 100, 0, 0)
	late := expectStatus(t, ts.webhook("late", `{"status":"success","order_id":`+id+`}`), 200)
	if late["status"] != "cancelled" || late["applied"] != false {
		t.Errorf("late success: %v", late)
	}
	ts.expectStock("1", 100, 0, 0)
	if h := ts.do("GET", "/api/holds/"+token, "").json(t); h["status"] != "ordered" {
		t.Errorf("hold after its order was cancelled: %v", h)
	}
	if !strings.Contains(ts.logs.String(), "refund needed") {
		t.Error("no refund warning in the log")
	}
	if !strings.Contains(ts.do("GET", "/metrics", "").String(), "flashsale_refunds_needed_total 1") {
		t.Error("refund not counted in /metrics")
	}
}

func (r response) String() string { return string(r.body) }
