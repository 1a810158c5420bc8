package transport

import (
	"bytes"
	"sync"
	"testing"
)

// TestWebhookIdempotentSequential: the same key again gets the first answer
// byte for byte, marked as a replay, and nothing is applied twice.
func TestWebhookIdempotentSequential(t *testing.T) {
	ts := startServer(t, nil)
	id := ts.order(ts.hold(1, 2))
	body := `{"status":"success","order_id":` + id + `}`
	first := ts.webhook("evt-1", body)
	if m := expectStatus(t, first, 200); m["status"] != "paid" || m["applied"] != true {
		t.Fatalf("first delivery: %s", first.body)
	}
	if first.header.Get("Idempotent-Replayed") != "" {
		t.Error("first delivery marked as replay")
	}
	for i := 0; i < 5; i++ {
		r := ts.webhook("evt-1", body)
		if r.status != 200 || !bytes.Equal(r.body, first.body) || r.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("delivery %d: %d %s %v", i+2, r.status, r.body, r.header)
		}
	}
	ts.expectStock("1", 98, 0, 2)
	if got := ts.eng.Stats().WebhooksApplied.Load(); got != 1 {
		t.Errorf("webhooks applied = %d, want 1", got)
	}
}

// TestWebhookIdempotentConcurrent: 50 deliveries of one event at once apply
// it once, and every answer has the same body.
func TestWebhookIdempotentConcurrent(t *testing.T) {
	ts := startServer(t, nil)
	id := ts.order(ts.hold(1, 2))
	body := `{"status":"success","order_id":` + id + `}`
	const n = 50
	answers := make([]response, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			answers[i], errs[i] = ts.tryDo("POST", "/api/payments/webhook", body, "Idempotency-Key", "evt-concurrent")
		}()
	}
	close(start)
	wg.Wait()
	fresh := 0
	for i, r := range answers {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if r.status != 200 || !bytes.Equal(r.body, answers[0].body) {
			t.Fatalf("answer %d: %d %s, want %s", i, r.status, r.body, answers[0].body)
		}
		if r.header.Get("Idempotent-Replayed") == "" {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%d answers not marked as replays, want exactly 1", fresh)
	}
	if m := answers[0].json(t); m["applied"] != true || m["status"] != "paid" {
		t.Errorf("answer %s", answers[0].body)
	}
	if got := ts.eng.Stats().WebhooksApplied.Load(); got != 1 {
		t.Errorf("webhooks applied = %d, want 1", got)
	}
	ts.expectStock("1", 98, 0, 2)
}

// TestWebhookBeforeOrder: a webhook for an order id that does not exist yet
// is 202 queued; the order's 201 then already shows the result.
func TestWebhookBeforeOrder(t *testing.T) {
	ts := startServer(t, nil)
	early := ts.webhook("early-1", `{"status":"success","order_id":1}`)
	if m := expectStatus(t, early, 202); m["status"] != "queued" || num(t, m, "order_id") != 1 || len(m) != 2 {
		t.Fatalf("early webhook: %s", early.body)
	}
	again := ts.webhook("early-1", `{"status":"success","order_id":1}`)
	if again.status != 202 || !bytes.Equal(again.body, early.body) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay of the queued event: %d %s", again.status, again.body)
	}
	token := ts.hold(1, 2)
	o := expectStatus(t, ts.do("POST", "/api/orders", `{"hold_token":"`+token+`"}`), 201)
	if num(t, o, "order_id") != 1 || o["status"] != "paid" {
		t.Fatalf("order created after its webhook: %v", o)
	}
	ts.expectStock("1", 98, 0, 2)

	// A failure that overtakes order 2 cancels it on creation.
	expectStatus(t, ts.webhook("early-2", `{"status":"failure","order_id":2,"failure_reason":"card_declined"}`), 202)
	o2 := expectStatus(t, ts.do("POST", "/api/orders", `{"hold_token":"`+ts.hold(1, 1)+`"}`), 201)
	if o2["status"] != "cancelled" || o2["failure_reason"] != "card_declined" {
		t.Fatalf("order 2: %v", o2)
	}
	ts.expectStock("1", 98, 0, 2)
}

// TestWebhookKeyReused: the same key with another body is 422 and changes
// nothing.
func TestWebhookKeyReused(t *testing.T) {
	ts := startServer(t, nil)
	id := ts.order(ts.hold(1, 1))
	expectStatus(t, ts.webhook("k", `{"status":"failure","order_id":`+id+`}`), 200)
	before := ts.snapshot()
	expectError(t, ts.webhook("k", `{"status":"success","order_id":`+id+`}`), 422, "idempotency_key_reused", "")
	expectError(t, ts.webhook("k", `{"status":"failure","order_id":`+id+`,"failure_reason":"other"}`), 422, "idempotency_key_reused", "")
	if after := ts.snapshot(); after != before {
		t.Errorf("a reused key changed state:\n%s\n%s", before, after)
	}
}

// TestFinalStatesNeverChange: paid stays paid, cancelled stays cancelled,
// whatever arrives later under new keys.
func TestFinalStatesNeverChange(t *testing.T) {
	ts := startServer(t, nil)
	paid := ts.order(ts.hold(1, 1))
	cancelled := ts.order(ts.hold(1, 2))
	expectStatus(t, ts.webhook("p1", `{"status":"success","order_id":`+paid+`}`), 200)
	m := expectStatus(t, ts.webhook("c1", `{"status":"failure","order_id":`+cancelled+`,"failure_reason":"insufficient_funds"}`), 200)
	if m["status"] != "cancelled" || m["applied"] != true {
		t.Fatalf("failure: %v", m)
	}
	ts.expectStock("1", 99, 0, 1)
	cases := []struct{ key, body, status string }{
		{"p2", `{"status":"failure","order_id":` + paid + `}`, "paid"},
		{"p3", `{"status":"success","order_id":` + paid + `}`, "paid"},
		{"c2", `{"status":"success","order_id":` + cancelled + `}`, "cancelled"},
		{"c3", `{"status":"failure","order_id":` + cancelled + `}`, "cancelled"},
	}
	for _, c := range cases {
		m := expectStatus(t, ts.webhook(c.key, c.body), 200)
		if m["status"] != c.status || m["applied"] != false {
			t.Errorf("%s: %v, want status %s applied false", c.body, m, c.status)
		}
	}
	ts.expectStock("1", 99, 0, 1)
	o := ts.do("GET", "/api/orders/"+cancelled, "").json(t)
	if o["status"] != "cancelled" || o["failure_reason"] != "insufficient_funds" {
		t.Errorf("cancelled order: %v", o)
	}
	if got := ts.eng.Stats().RefundsNeeded.Load(); got != 1 {
		t.Errorf("refunds needed = %d, want 1", got)
	}
}
