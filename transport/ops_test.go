package transport

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/valyala/fasthttp"
)

// TestHealthAndMetrics: /healthz is {"status":"ok"} until the server drains;
// /metrics is Prometheus text with the series docs/API.md lists.
func TestHealthAndMetrics(t *testing.T) {
	ts := startServer(t, nil)
	h := ts.do("GET", "/healthz", "")
	if h.status != 200 || string(h.body) != `{"status":"ok"}` {
		t.Fatalf("healthz: %d %s", h.status, h.body)
	}
	id := ts.order(ts.hold(1, 1))
	ts.webhook("m1", `{"status":"success","order_id":`+id+`}`)
	ts.webhook("m1", `{"status":"success","order_id":`+id+`}`)
	ts.webhook("m2", `{"status":"success","order_id":77}`)
	ts.do("POST", "/api/holds", `{"product_id":2,"qty":5}`)
	ts.do("GET", "/api/products/1", "")

	m := ts.do("GET", "/metrics", "")
	if m.status != 200 || !strings.HasPrefix(m.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %s", m.status, m.header.Get("Content-Type"))
	}
	text := string(m.body)
	for _, want := range []string{
		`flashsale_http_requests_total{route="POST /api/holds",status="201"} 1`,
		`flashsale_http_requests_total{route="POST /api/holds",status="422"} 1`,
		`flashsale_http_requests_total{route="GET /api/products/{id}",status="200"} 1`,
		`flashsale_http_request_duration_seconds_bucket{route="POST /api/orders",le="+Inf"} 1`,
		`flashsale_holds_total{event="created"} 1`,
		`flashsale_holds_total{event="expired"} 0`,
		`flashsale_orders_total{event="created"} 1`,
		`flashsale_orders_total{event="paid"} 1`,
		`flashsale_webhooks_total{result="applied"} 1`,
		`flashsale_webhooks_total{result="replayed"} 1`,
		`flashsale_webhooks_total{result="queued"} 1`,
		`flashsale_orders{status="pending"} 0`,
		`flashsale_replay_seconds`,
		`flashsale_product_stock{product="1",kind="sold"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	ts.srv.Drain()
	expectError(t, ts.do("GET", "/healthz", ""), 503, "shutting_down", "")
}

// TestAccessLog: lines carry the route pattern, never the raw path; server
// errors are logged at error level.
func TestAccessLog(t *testing.T) {
	ts := startServer(t, nil)
	token := ts.hold(1, 1)
	ts.do("GET", "/api/holds/"+token, "")
	logs := ts.logs.String()
	if !strings.Contains(logs, `"route":"GET /api/holds/{hold_token}"`) || !strings.Contains(logs, `"status":200`) ||
		!strings.Contains(logs, `"duration_ms":`) {
		t.Errorf("access line missing: %s", logs)
	}
	if strings.Contains(logs, token) {
		t.Errorf("the access log holds a raw path with a token: %s", logs)
	}
}

// TestPanicRecovered: a panicking handler gives a 500 internal_error JSON
// answer and an error line, and the server keeps serving.
func TestPanicRecovered(t *testing.T) {
	ts := startServer(t, nil)
	rt := ts.srv.newRoute("GET /boom", func(*Server, *fasthttp.RequestCtx, *scratch) { panic("boom") })
	ts.srv.router.GET("/boom", ts.srv.bind(rt))
	expectError(t, ts.do("GET", "/boom", ""), 500, "internal_error", "")
	if logs := ts.logs.String(); !strings.Contains(logs, `"panic":"boom"`) || !strings.Contains(logs, `"level":"error"`) {
		t.Errorf("no panic line: %s", logs)
	}
	expectStatus(t, ts.do("GET", "/healthz", ""), 200)
}

// TestShuttingDown: once the engine stops, commands are 503 shutting_down.
func TestShuttingDown(t *testing.T) {
	ts := startServer(t, nil)
	ts.eng.Stop()
	r := ts.do("POST", "/api/holds", `{"product_id":1,"qty":1}`)
	expectError(t, r, 503, "shutting_down", "")
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
}

// TestJournalFailure: when the log fails nothing is acknowledged: 500
// internal_error, logged at error level.
func TestJournalFailure(t *testing.T) {
	ts := startServer(t, nil)
	ts.journal.Fail()
	expectError(t, ts.do("POST", "/api/holds", `{"product_id":1,"qty":1}`), 500, "internal_error", "")
	if !strings.Contains(ts.logs.String(), `"level":"error"`) {
		t.Error("a 500 was not logged at error level")
	}
}

// gateJournal acknowledges nothing until opened, so that actors fill up.
type gateJournal struct {
	mu      sync.Mutex
	open    bool
	waiting []func(error)
}

func (g *gateJournal) Submit(_ [][]byte, done func(error)) {
	g.mu.Lock()
	if !g.open {
		g.waiting = append(g.waiting, done)
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	done(nil)
}

func (g *gateJournal) Open() {
	g.mu.Lock()
	g.open = true
	waiting := g.waiting
	g.waiting = nil
	g.mu.Unlock()
	for _, done := range waiting {
		done(nil)
	}
}

// TestOverloaded: when a product's queue is full the answer is 503
// overloaded with Retry-After, not an unbounded wait.
func TestOverloaded(t *testing.T) {
	gate := &gateJournal{open: true}
	ts := startServer(t, func(s *serverSetup) {
		s.journal = gate
		s.cfg.InboxCap = 1
		s.products = []engine.ProductSpec{{ID: 1, Name: "Deep", PriceCents: 1, TotalStock: 1_000_000, MaxPerHold: 1}}
	})
	gate.mu.Lock()
	gate.open = false
	gate.mu.Unlock()
	defer gate.Open() // before the server's cleanup, which waits for these requests
	const n = 200
	results := make(chan response, n)
	for i := 0; i < n; i++ {
		go func() {
			r, err := ts.tryDo("POST", "/api/holds", `{"product_id":1,"qty":1}`)
			if err != nil {
				r = response{status: -1, body: []byte(err.Error())}
			}
			results <- r
		}()
	}
	// The actor holds at most 16 batches in flight plus one queued command;
	// the rest must be refused at once, before the gate opens.
	var overloaded int
	for overloaded == 0 {
		var r response
		select {
		case r = <-results:
		case <-time.After(10 * time.Second):
			t.Fatal("no request was refused while the log acknowledged nothing")
		}
		if r.status != 503 {
			t.Fatalf("before the log acknowledged anything: %d %s", r.status, r.body)
		}
		expectError(t, r, 503, "overloaded", "")
		if r.header.Get("Retry-After") != "1" {
			t.Errorf("Retry-After = %q", r.header.Get("Retry-After"))
		}
		overloaded++
	}
	gate.Open()
	for i := 1; i < n; i++ {
		r := <-results
		if r.status != 201 && r.status != 503 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	}
}
