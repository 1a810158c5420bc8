package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestRestartAfterSIGTERM: a graceful stop exits 0; a restart on the same
// data directory has every product, hold, order, payment and queued webhook
// back, and idempotent replays answer as they did before.
func TestRestartAfterSIGTERM(t *testing.T) {
	dir := t.TempDir()
	p := startProc(t, nil, "--data-dir", dir, "--admin-token", "adm")
	p.expect(200, "GET", "/healthz", "")

	holdKeyed := p.expect(201, "POST", "/api/holds", `{"product_id":1,"qty":2}`, "Idempotency-Key", "h-1")
	paidToken := field(t, holdKeyed, "hold_token")
	paidOrder := p.expect(201, "POST", "/api/orders", `{"hold_token":"`+paidToken+`"}`)
	paidID := field(t, paidOrder, "order_id")
	payment := p.expect(200, "POST", "/api/payments/webhook", `{"status":"success","order_id":`+paidID+`}`, "Idempotency-Key", "pay-1")
	pendingToken := field(t, p.expect(201, "POST", "/api/holds", `{"product_id":2,"qty":2}`), "hold_token")
	pendingOrder := p.expect(201, "POST", "/api/orders", `{"hold_token":"`+pendingToken+`"}`)
	activeToken := field(t, p.expect(201, "POST", "/api/holds", `{"product_id":3,"qty":5}`), "hold_token")
	for i := 0; i < 4; i++ {
		p.expect(201, "POST", "/api/holds", `{"product_id":2,"qty":2}`)
	}
	conflict := p.expect(409, "POST", "/api/holds", `{"product_id":2,"qty":1}`, "Idempotency-Key", "h-409")
	queued := p.expect(202, "POST", "/api/payments/webhook", `{"status":"success","order_id":3}`, "Idempotency-Key", "early")
	created := p.expect(201, "POST", "/api/admin/products", `{"name":"Added","price_cents":10,"total_stock":7}`, "Authorization", "Bearer adm")
	products := p.expect(200, "GET", "/api/products", "")

	if code := p.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, p.log())
	}
	if !strings.Contains(p.log(), `"message":"stopped"`) {
		t.Errorf("no stop line:\n%s", p.log())
	}

	q := startProc(t, nil, "--data-dir", dir, "--admin-token", "adm")
	sameBody(t, "products", q.expect(200, "GET", "/api/products", ""), products)
	sameBody(t, "paid order", q.expect(200, "GET", "/api/orders/"+paidID, ""),
		reply{status: 200, body: []byte(strings.Replace(string(paidOrder.body), `"status":"pending"`, `"status":"paid"`, 1))}.withUpdated(t, q, paidID))
	sameBody(t, "pending order", q.expect(200, "GET", "/api/orders/"+field(t, pendingOrder, "order_id"), ""), reply{status: 200, body: pendingOrder.body})
	if s := field(t, q.expect(200, "GET", "/api/holds/"+activeToken, ""), "status"); s != "active" {
		t.Errorf("active hold after restart: %s", s)
	}
	if s := field(t, q.expect(200, "GET", "/api/holds/"+paidToken, ""), "status"); s != "ordered" {
		t.Errorf("ordered hold after restart: %s", s)
	}
	sameBody(t, "product created by admin", q.expect(200, "GET", "/api/products/"+field(t, created, "id"), ""),
		reply{status: 200, body: created.body})

	// Idempotent replays answer as before the restart.
	for _, c := range []struct {
		what, path, body, key string
		first                 reply
	}{
		{"hold replay", "/api/holds", `{"product_id":1,"qty":2}`, "h-1", holdKeyed},
		{"409 replay", "/api/holds", `{"product_id":2,"qty":1}`, "h-409", conflict},
		{"payment replay", "/api/payments/webhook", `{"status":"success","order_id":` + paidID + `}`, "pay-1", payment},
		{"queued replay", "/api/payments/webhook", `{"status":"success","order_id":3}`, "early", queued},
	} {
		r := q.do("POST", c.path, c.body, "Idempotency-Key", c.key)
		sameBody(t, c.what, r, c.first)
		if r.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("%s: not marked as a replay", c.what)
		}
	}
	q.expect(422, "POST", "/api/holds", `{"product_id":1,"qty":3}`, "Idempotency-Key", "h-1")
	sameBody(t, "products after replays", q.expect(200, "GET", "/api/products", ""), products)

	// The queued webhook survived: order 3, created now, is already paid;
	// order ids continue after the log's.
	third := q.expect(201, "POST", "/api/orders", `{"hold_token":"`+activeToken+`"}`)
	if field(t, third, "order_id") != "3" || field(t, third, "status") != "paid" {
		t.Errorf("order after restart: %s", third.body)
	}
	if code := q.stop(syscall.SIGINT); code != 0 {
		t.Fatalf("exit code %d after SIGINT", code)
	}
}

// withUpdated replaces the expected paid order's updated_at with the one the
// server reports (payment time), keeping every other byte.
func (r reply) withUpdated(t *testing.T, p *proc, id string) reply {
	t.Helper()
	now := p.expect(200, "GET", "/api/orders/"+id, "")
	want := field(t, now, "updated_at")
	old := field(t, r, "updated_at")
	r.body = []byte(strings.Replace(string(r.body), `"updated_at":"`+old+`"`, `"updated_at":"`+want+`"`, 1))
	return r
}

// TestKill9LosesNothingAcknowledged: every 2xx sent before kill -9 is there
// after the restart.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	p := startProc(t, nil, "--data-dir", dir)
	var tokens []string
	for i := 0; i < 20; i++ {
		tokens = append(tokens, field(t, p.expect(201, "POST", "/api/holds", `{"product_id":3,"qty":1}`), "hold_token"))
	}
	id := field(t, p.expect(201, "POST", "/api/orders", `{"hold_token":"`+tokens[0]+`"}`), "order_id")
	products := p.expect(200, "GET", "/api/products", "")
	if code := p.stop(syscall.SIGKILL); code != -1 && code != 137 {
		t.Logf("exit code after SIGKILL: %d", code)
	}
	q := startProc(t, nil, "--data-dir", dir)
	sameBody(t, "products", q.expect(200, "GET", "/api/products", ""), products)
	for _, tok := range tokens[1:] {
		if s := field(t, q.expect(200, "GET", "/api/holds/"+tok, ""), "status"); s != "active" {
			t.Fatalf("hold %s: %s", tok, s)
		}
	}
	q.expect(200, "GET", "/api/orders/"+id, "")
}

// TestCorruptLog: damage in the middle of the log stops the server with a
// clear error and a non-zero exit; --wal-truncate-corrupt (or its variable)
// starts it on what precedes the damage.
func TestCorruptLog(t *testing.T) {
	dir := t.TempDir()
	p := startProc(t, nil, "--data-dir", dir)
	for i := 0; i < 50; i++ {
		p.expect(201, "POST", "/api/holds", `{"product_id":3,"qty":1}`)
	}
	if code := p.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "wal", "*"))
	var seg string
	for _, s := range segs {
		if st, err := os.Stat(s); err == nil && st.Mode().IsRegular() && st.Size() > 1000 {
			seg = s
		}
	}
	if seg == "" {
		t.Fatalf("no segment file among %v", segs)
	}
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(seg, data, 0o600); err != nil {
		t.Fatal(err)
	}

	bad := launch(t, nil, "--data-dir", dir)
	if code := bad.waitExit(); code == 0 {
		t.Fatalf("started on a corrupt log:\n%s", bad.log())
	}
	if log := bad.log(); !strings.Contains(log, "corrupt") || !strings.Contains(log, "--wal-truncate-corrupt") {
		t.Errorf("the error does not explain the damage and the way out:\n%s", log)
	}

	ok := startProc(t, []string{"FLASHSALE_WAL_TRUNCATE_CORRUPT=true"}, "--data-dir", dir)
	n := ok.expect(200, "GET", "/api/products/3", "").obj(t)["reserved_stock"].(float64)
	if n <= 0 || n >= 50 {
		t.Errorf("reserved after truncation = %v, want some but not all of the 50 holds", n)
	}
	if !strings.Contains(ok.log(), "dropped_records") {
		t.Errorf("truncation not reported:\n%s", ok.log())
	}
}
