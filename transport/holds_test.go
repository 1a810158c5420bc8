package transport

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
)

// millisRFC3339 is docs/API.md's timestamp form.
var millisRFC3339 = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)

// TestHoldStockBoundary: stock 50, 500 clients at once over 500 connections,
// exactly 50 succeed, the rest get 409 insufficient_stock, and availability
// ends at 0.
func TestHoldStockBoundary(t *testing.T) {
	ts := startServer(t, func(s *serverSetup) {
		s.products = []engine.ProductSpec{{ID: 7, Name: "Boundary", PriceCents: 100, TotalStock: 50, MaxPerHold: 1}}
		s.opts.AccessSampler = nil // default sampling: 500 lines at once is the load it is for
	})
	const clients = 500
	var (
		start    = make(chan struct{})
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
		tokens   = map[string]bool{}
		failures []string
	)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := ts.tryDo("POST", "/api/holds", `{"product_id":7,"qty":1}`)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures = append(failures, err.Error())
				return
			}
			statuses[r.status]++
			var m map[string]any
			if err := json.Unmarshal(r.body, &m); err != nil {
				failures = append(failures, "bad body "+string(r.body))
				return
			}
			switch r.status {
			case 201:
				tokens[m["hold_token"].(string)] = true
			case 409:
				if m["error"] != "insufficient_stock" || m["available_stock"] != float64(0) {
					failures = append(failures, "bad 409 "+string(r.body))
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d failures, first: %s", len(failures), failures[0])
	}
	if statuses[201] != 50 || statuses[409] != clients-50 || len(tokens) != 50 {
		t.Fatalf("statuses %v, %d distinct tokens; want 50 201s and 450 409s", statuses, len(tokens))
	}
	ts.expectStock("7", 0, 50, 0)
}

// holdTokenShape is <product id>_<hold sequence>_<128 random bits in hex>.
var holdTokenShape = regexp.MustCompile(`^[1-9][0-9]*_[1-9][0-9]*_[0-9a-f]{32}$`)

// TestHoldCreatedShape checks the 201 body, the hold read, and that the
// hold counts in the product at once.
func TestHoldCreatedShape(t *testing.T) {
	ts := startServer(t, nil)
	r := ts.do("POST", "/api/holds", `{"product_id":1,"qty":3,"ignored":{"x":[1,2]}}`)
	m := expectStatus(t, r, 201)
	token := m["hold_token"].(string)
	if !holdTokenShape.MatchString(token) || !strings.HasPrefix(token, "1_") {
		t.Errorf("hold_token %q: want 1_<sequence>_ and 32 hex digits (128 random bits)", token)
	}
	if num(t, m, "product_id") != 1 || num(t, m, "qty") != 3 || !millisRFC3339.MatchString(m["expires_at"].(string)) {
		t.Errorf("bad hold body %s", r.body)
	}
	if len(m) != 4 {
		t.Errorf("201 body has fields beyond docs/API.md's: %s", r.body)
	}
	expires, _ := time.Parse(time.RFC3339, m["expires_at"].(string))
	if d := time.Until(expires); d < time.Minute || d > 2*time.Minute+time.Second {
		t.Errorf("expires_at %v is not about the default 2m hold TTL away", d)
	}
	ts.expectStock("1", 97, 3, 0)
	h := expectStatus(t, ts.do("GET", "/api/holds/"+token, ""), 200)
	if h["status"] != "active" || h["hold_token"] != token || h["expires_at"] != m["expires_at"] || h["order_id"] != nil {
		t.Errorf("bad hold read %v", h)
	}
}

// TestHoldExpiry: a short hold TTL gives the units back, the hold reads as
// expired, and ordering it is 410.
func TestHoldExpiry(t *testing.T) {
	ts := startServer(t, func(s *serverSetup) { s.cfg.HoldTTL = 300 * time.Millisecond })
	token := ts.hold(1, 4)
	ts.expectStock("1", 96, 4, 0)
	waitFor(t, 2*time.Second, "the hold's units to come back", func() bool {
		return num(t, ts.product("1"), "available_stock") == 100
	})
	ts.expectStock("1", 100, 0, 0)
	h := expectStatus(t, ts.do("GET", "/api/holds/"+token, ""), 200)
	if h["status"] != "expired" {
		t.Errorf("hold status %v, want expired", h["status"])
	}
	expectError(t, ts.do("POST", "/api/orders", `{"hold_token":"`+token+`"}`), 410, "hold_expired", "")
	if got := ts.eng.Stats().HoldsExpired.Load(); got != 1 {
		t.Errorf("holds expired = %d", got)
	}
}

// TestHoldExpiryPrecision: docs/API.md allows an expired hold to count for at
// most 100 ms after its expires_at. The test gives the noisy machine a
// little more before failing, and says how late the release was.
func TestHoldExpiryPrecision(t *testing.T) {
	ts := startServer(t, func(s *serverSetup) { s.cfg.HoldTTL = 200 * time.Millisecond })
	m := expectStatus(t, ts.do("POST", "/api/holds", `{"product_id":1,"qty":1}`), 201)
	expires, err := time.Parse(time.RFC3339Nano, m["expires_at"].(string))
	if err != nil {
		t.Fatal(err)
	}
	for num(t, ts.product("1"), "available_stock") != 100 {
		if late := time.Since(expires); late > 400*time.Millisecond {
			t.Fatalf("hold still counted %v after expires_at", late)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHoldIdempotency: the same key and body replays the first answer with
// Idempotent-Replayed, reserving nothing more; another body is 422.
func TestHoldIdempotency(t *testing.T) {
	ts := startServer(t, nil)
	first := ts.do("POST", "/api/holds", `{"product_id":1,"qty":2}`, "Idempotency-Key", "hold-key-1")
	expectStatus(t, first, 201)
	if first.header.Get("Idempotent-Replayed") != "" {
		t.Error("first answer marked as replayed")
	}
	again := ts.do("POST", "/api/holds", `{ "qty": 2, "product_id": 1 }`, "Idempotency-Key", "hold-key-1")
	if again.status != 201 || !bytes.Equal(again.body, first.body) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s %v, want the first answer %s", again.status, again.body, again.header, first.body)
	}
	ts.expectStock("1", 98, 2, 0)
	before := ts.snapshot()
	expectError(t, ts.do("POST", "/api/holds", `{"product_id":1,"qty":3}`, "Idempotency-Key", "hold-key-1"),
		422, "idempotency_key_reused", "")
	if after := ts.snapshot(); after != before {
		t.Errorf("a reused key changed state:\n%s\n%s", before, after)
	}
	// A key of 255 visible characters is valid.
	long := strings.Repeat("~", 255)
	expectStatus(t, ts.do("POST", "/api/holds", `{"product_id":1,"qty":1}`, "Idempotency-Key", long), 201)
}

// TestHoldIdempotencyConcurrent: 50 deliveries of one key at once reserve once
// and all get the same body.
func TestHoldIdempotencyConcurrent(t *testing.T) {
	ts := startServer(t, nil)
	const n = 50
	bodies := make([]response, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			bodies[i], errs[i] = ts.tryDo("POST", "/api/holds", `{"product_id":1,"qty":5}`, "Idempotency-Key", "same")
		}()
	}
	close(start)
	wg.Wait()
	fresh := 0
	for i := range bodies {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if bodies[i].status != 201 || !bytes.Equal(bodies[i].body, bodies[0].body) {
			t.Fatalf("answer %d: %d %s, want %s", i, bodies[i].status, bodies[i].body, bodies[0].body)
		}
		if bodies[i].header.Get("Idempotent-Replayed") == "" {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%d answers not marked as replays, want 1", fresh)
	}
	ts.expectStock("1", 95, 5, 0)
}

// TestHoldIdempotentConflictReplays: a 409 under a key is replayed as that
// 409 even after stock has come back.
func TestHoldIdempotentConflictReplays(t *testing.T) {
	ts := startServer(t, func(s *serverSetup) { s.opts.AdminToken = "admin" })
	ts.hold(2, 2)
	for i := 0; i < 4; i++ {
		ts.hold(2, 2)
	}
	first := ts.do("POST", "/api/holds", `{"product_id":2,"qty":1}`, "Idempotency-Key", "k409")
	if m := expectError(t, first, 409, "insufficient_stock", ""); num(t, m, "available_stock") != 0 {
		t.Fatalf("available_stock in %s", first.body)
	}
	expectStatus(t, ts.do("POST", "/api/admin/products/2/restock", `{"qty":5}`, "Authorization", "Bearer admin"), 200)
	again := ts.do("POST", "/api/holds", `{"product_id":2,"qty":1}`, "Idempotency-Key", "k409")
	if again.status != 409 || !bytes.Equal(again.body, first.body) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay after restock: %d %s, want the first 409 %s", again.status, again.body, first.body)
	}
	ts.expectStock("2", 5, 10, 0)
}
