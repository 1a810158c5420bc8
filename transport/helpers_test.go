package transport

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/bench/apicheck"
	"github.com/flashsale/flashsale/engine"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind. Two fasthttp
// goroutines are exempt: the worker pool cleaner, which notices Shutdown only
// when its sleep of Server.MaxIdleWorkerDuration (10 s) ends, and the
// process-wide Date header updater, which fasthttp starts once and never stops.
// Cluster tests forward through a HostClient: its idle-connection cleaner
// ends only after its own sleep, and the default dialer's address cache
// cleaner is process-wide too.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*TCPDialer).tcpAddrsClean"))
}

// testServer is the front end on a real loopback listener over an engine on
// a MemJournal (or another test journal), with a real HTTP client.
type testServer struct {
	t       *testing.T
	eng     *engine.Engine
	journal *engine.MemJournal
	srv     *Server
	hs      *fasthttp.Server
	base    string
	client  *http.Client
	logs    *syncBuffer
}

// serverSetup is what a test may change before the server starts.
type serverSetup struct {
	cfg      engine.Config
	opts     Options
	products []engine.ProductSpec
	journal  engine.Journal // nil: a MemJournal
}

// testProducts is the default catalog of a test server.
var testProducts = []engine.ProductSpec{
	{ID: 1, Name: "Flash Widget", PriceCents: 4999, TotalStock: 100, MaxPerHold: 10},
	{ID: 2, Name: "Hot Item", PriceCents: 12999, TotalStock: 10, MaxPerHold: 2},
}

// startServer starts a server; edit, if not nil, adjusts the setup first.
func startServer(t *testing.T, edit func(*serverSetup)) *testServer {
	t.Helper()
	ts := &testServer{t: t, journal: &engine.MemJournal{}, logs: &syncBuffer{}}
	setup := serverSetup{cfg: engine.DefaultConfig(), products: testProducts}
	setup.opts.Logger = zerolog.New(ts.logs).Level(zerolog.DebugLevel)
	setup.opts.AccessSampler = &zerolog.BasicSampler{N: 1}
	setup.cfg.OnRefundNeeded = RefundLogger(setup.opts.Logger)
	if edit != nil {
		edit(&setup)
	}
	setup.cfg.Journal = ts.journal
	if setup.journal != nil {
		setup.cfg.Journal = setup.journal
	}
	ts.eng = engine.New(setup.cfg)
	ts.eng.Start()
	if _, err := ts.eng.Seed(setup.products); err != nil {
		t.Fatal(err)
	}
	ts.srv = New(ts.eng, setup.opts)
	ts.hs = ts.srv.HTTPServer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.base = "http://" + ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ts.hs.Serve(ts.srv.Listener(ln))
	}()
	ts.client = &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConns: 1000, MaxIdleConnsPerHost: 1000},
	}
	t.Cleanup(func() {
		ts.client.CloseIdleConnections()
		_ = ts.hs.Shutdown()
		ts.srv.CloseForwarding()
		<-done
		ts.eng.Stop()
		if err := ts.eng.CheckInvariant(); err != nil {
			t.Errorf("stock invariant: %v", err)
		}
	})
	return ts
}

// response is one HTTP answer, read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body as an object; every answer of the API must be one.
func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, r.body)
	}
	return m
}

// do sends one request; headers are name, value pairs.
func (ts *testServer) do(method, path, body string, headers ...string) response {
	ts.t.Helper()
	r, err := ts.tryDo(method, path, body, headers...)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// tryDo is do for other goroutines: it returns the error instead of failing.
func (ts *testServer) tryDo(method, path, body string, headers ...string) (response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.base+path, rd)
	if err != nil {
		return response{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	r := response{status: resp.StatusCode, header: resp.Header, body: b}
	ts.checkContract(req, []byte(body), r)
	return r, nil
}

// checkContract holds every exchange of every test that sends through do
// or tryDo to docs/openapi.yaml (bench/apicheck's rules: a request the
// document calls invalid must get a 4xx, an undocumented route one of the
// server's refusals, and every answer its operation's status, headers and
// schema). A break fails the test with t.Errorf, safe from any goroutine.
func (ts *testServer) checkContract(req *http.Request, body []byte, r response) {
	c, err := apicheck.Default()
	if err != nil {
		ts.t.Errorf("docs/openapi.yaml: %v", err)
		return
	}
	ex := apicheck.Exchange{Method: req.Method, Path: req.URL.RequestURI(), Header: req.Header, Body: body,
		Status: r.status, RespHeader: r.header, RespBody: r.body}
	if err := c.Check(&ex); err != nil {
		ts.t.Errorf("docs/openapi.yaml: %v", err)
	}
}

// expectError checks an error answer: status, code, and field if not empty.
func expectError(t *testing.T, r response, status int, code, field string) map[string]any {
	t.Helper()
	m := r.json(t)
	if r.status != status || m["error"] != code {
		t.Fatalf("got %d %s, want %d %s", r.status, r.body, status, code)
	}
	if msg, _ := m["message"].(string); msg == "" {
		t.Errorf("error without a message: %s", r.body)
	}
	if field != "" && m["field"] != field {
		t.Errorf("field = %v, want %q in %s", m["field"], field, r.body)
	}
	if got := r.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	return m
}

func expectStatus(t *testing.T, r response, status int) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("got %d %s, want %d", r.status, r.body, status)
	}
	return r.json(t)
}

// product reads a product through the API.
func (ts *testServer) product(id string) map[string]any {
	ts.t.Helper()
	return expectStatus(ts.t, ts.do("GET", "/api/products/"+id, ""), 200)
}

// hold creates a hold and returns its token.
func (ts *testServer) hold(productID, qty int) string {
	ts.t.Helper()
	m := expectStatus(ts.t, ts.do("POST", "/api/holds", jsonf(`{"product_id":%d,"qty":%d}`, productID, qty)), 201)
	return m["hold_token"].(string)
}

// order turns a hold into an order and returns the order's id.
func (ts *testServer) order(token string) string {
	ts.t.Helper()
	m := expectStatus(ts.t, ts.do("POST", "/api/orders", `{"hold_token":"`+token+`"}`), 201)
	return m["order_id"].(json.Number).String()
}

// webhook posts a payment event under key.
func (ts *testServer) webhook(key, body string) response {
	ts.t.Helper()
	return ts.do("POST", "/api/payments/webhook", body, "Idempotency-Key", key)
}

// num reads a JSON number field as an int64.
func num(t *testing.T, m map[string]any, field string) int64 {
	t.Helper()
	n, ok := m[field].(json.Number)
	if !ok {
		t.Fatalf("%s is not a number in %v", field, m)
	}
	v, err := n.Int64()
	if err != nil {
		t.Fatalf("%s: %v", field, err)
	}
	return v
}

// expectStock checks a product's counts through the API.
func (ts *testServer) expectStock(id string, available, reserved, sold int64) {
	ts.t.Helper()
	p := ts.product(id)
	a, r, s := num(ts.t, p, "available_stock"), num(ts.t, p, "reserved_stock"), num(ts.t, p, "sold_stock")
	if a != available || r != reserved || s != sold {
		ts.t.Fatalf("product %s: available/reserved/sold = %d/%d/%d, want %d/%d/%d", id, a, r, s, available, reserved, sold)
	}
	if total := num(ts.t, p, "total_stock"); total != a+r+s {
		ts.t.Fatalf("product %s: total %d != %d+%d+%d", id, total, a, r, s)
	}
}

// snapshot is everything observable that a refused request must not change:
// the product list and the number of records in the journal.
func (ts *testServer) snapshot() string {
	ts.t.Helper()
	r := ts.do("GET", "/api/products", "")
	return string(r.body) + "|records=" + itoa(ts.journal.Len())
}

// syncBuffer is a log sink safe for the server's goroutines and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
