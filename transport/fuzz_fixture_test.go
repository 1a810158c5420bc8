package transport

import (
	"bytes"
	"encoding/json"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// This file is the harness of the request fuzz targets: a server over a
// real engine on a fake clock, driven through Server.Handler on a reused
// RequestCtx, and the checks every answer must pass.

// countingJournal acknowledges at once and counts the records, so that a
// fuzz target can tell whether a request wrote anything.
type countingJournal struct{ n atomic.Int64 }

func (j *countingJournal) Submit(records [][]byte, done func(error)) {
	j.n.Add(int64(len(records)))
	done(nil)
}

// Fixed inputs of the fuzz fixtures.
const (
	fuzzAdminToken    = "fuzz-admin-token"
	fuzzWebhookSecret = "fuzz-webhook-secret"
	// fuzzFixtureRuns is how many inputs one engine serves before it is
	// replaced, so that holds, orders, products and remembered keys made by
	// accepted inputs stay bounded over a long fuzzing run.
	fuzzFixtureRuns = 500
)

var fuzzEpoch = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fuzzProducts: one with room, one sold out, one that allows big holds.
var fuzzProducts = []engine.ProductSpec{
	{ID: 1, Name: "Flash Widget", PriceCents: 4999, TotalStock: 100, MaxPerHold: 10},
	{ID: 2, Name: "Sold Out", PriceCents: 100, TotalStock: 0, MaxPerHold: 2},
	{ID: 3, Name: "Bulk", PriceCents: 1, TotalStock: 1_000_000, MaxPerHold: 1_000_000},
}

// fuzzFixture is a server with webhook signatures and admin endpoints on,
// over an engine seeded with fuzzProducts. prepare, if set, makes the holds
// and orders a target needs and returns placeholder → text substitutions
// (for example "@active" → a live hold token) applied to every input.
type fuzzFixture struct {
	tb      testing.TB
	prepare func(*fuzzFixture) map[string]string

	clock   *engine.FakeClock
	journal *countingJournal
	eng     *engine.Engine
	srv     *Server
	log     bytes.Buffer // error lines (panics) of the current input
	ctx     fasthttp.RequestCtx
	subst   map[string]string
	runs    int
}

func newFuzzFixture(tb testing.TB, prepare func(*fuzzFixture) map[string]string) *fuzzFixture {
	fx := &fuzzFixture{tb: tb, prepare: prepare}
	fx.ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, nil)
	fx.rebuild()
	tb.Cleanup(func() { fx.eng.Stop() })
	return fx
}

// rebuild replaces the engine and server with fresh ones.
func (fx *fuzzFixture) rebuild() {
	if fx.eng != nil {
		fx.eng.Stop()
	}
	fx.clock = engine.NewFakeClock(fuzzEpoch)
	fx.journal = &countingJournal{}
	cfg := engine.DefaultConfig()
	cfg.Clock = fx.clock
	cfg.Journal = fx.journal
	fx.eng = engine.New(cfg)
	fx.eng.Start()
	if _, err := fx.eng.Seed(fuzzProducts); err != nil {
		fx.tb.Fatal(err)
	}
	fx.srv = New(fx.eng, Options{
		Logger:        zerolog.New(&fx.log).Level(zerolog.ErrorLevel),
		WebhookSecret: []byte(fuzzWebhookSecret),
		AdminToken:    fuzzAdminToken,
		Now:           fx.clock.Now,
	})
	fx.subst = nil
	if fx.prepare != nil {
		fx.subst = fx.prepare(fx)
	}
	fx.runs = 0
}

// expand applies the fixture's substitutions to an input.
func (fx *fuzzFixture) expand(b []byte) []byte {
	for k, v := range fx.subst {
		b = bytes.ReplaceAll(b, []byte(k), []byte(v))
	}
	return b
}

// state is what a refused request must leave alone: every product's counts
// and the number of records written.
type fuzzState struct {
	products []engine.Product
	records  int64
}

func (fx *fuzzFixture) state() fuzzState {
	return fuzzState{products: fx.eng.Products(nil), records: fx.journal.n.Load()}
}

// fuzzRequest is one request of a fuzz input.
type fuzzRequest struct {
	path    string
	body    []byte
	headers [][2]string // set in order; an empty value is sent as such
}

// next counts an input, rebuilding the fixture first when it has served
// fuzzFixtureRuns of them.
func (fx *fuzzFixture) next() {
	if fx.runs++; fx.runs > fuzzFixtureRuns {
		fx.rebuild()
		fx.runs = 1
	}
}

// serve runs req through Server.Handler on the reused context.
func (fx *fuzzFixture) serve(req fuzzRequest) {
	fx.log.Reset()
	r := &fx.ctx.Request
	r.Reset()
	r.Header.SetMethod(fasthttp.MethodPost)
	r.SetRequestURI(req.path)
	r.Header.SetContentType("application/json")
	for _, h := range req.headers {
		r.Header.Set(h[0], h[1])
	}
	r.SetBody(req.body)
	fx.ctx.Response.Reset()
	fx.srv.Handler(&fx.ctx)
}

// endpointAnswers lists, for one endpoint, every status docs/API.md allows and
// the error codes each may carry (none for a success).
type endpointAnswers map[int][]string

// Allowed answers per endpoint. Overload and shutdown (503) cannot happen
// on the fuzz fixture, so they are not allowed here; 500 never is.
var (
	holdAnswers = endpointAnswers{
		201: nil,
		400: {"invalid_json", "idempotency_key_required"},
		404: {"product_not_found"},
		409: {"insufficient_stock"},
		413: {"body_too_large"},
		422: {"validation_failed", "idempotency_key_reused"},
	}
	orderAnswers = endpointAnswers{
		200: nil, 201: nil,
		400: {"invalid_json"},
		404: {"hold_not_found"},
		410: {"hold_expired"},
		413: {"body_too_large"},
		422: {"validation_failed"},
	}
	webhookAnswers = endpointAnswers{
		200: nil, 202: nil,
		400: {"invalid_json", "idempotency_key_required"},
		401: {"invalid_signature", "signature_replayed"},
		404: {"order_not_found"}, // an order id more than engine.OrderIDAheadMax ahead
		413: {"body_too_large"},
		422: {"validation_failed", "idempotency_key_reused"},
		429: {"too_many_queued_webhooks"},
	}
	adminCreateAnswers = endpointAnswers{
		201: nil,
		400: {"invalid_json"},
		401: {"unauthorized"},
		413: {"body_too_large"},
		422: {"validation_failed"},
	}
	restockAnswers = endpointAnswers{
		200: nil,
		400: {"invalid_json"},
		401: {"unauthorized"},
		404: {"product_not_found", "not_found"},
		413: {"body_too_large"},
		422: {"validation_failed"},
	}
)

// check runs req and checks the answer: an allowed status and error code,
// a body that is exactly one JSON object, and, for a refusal or an
// idempotent replay, no change to any product and nothing written (except
// where mayWrite says a refusal is remembered under its key). Accepted
// requests must keep the stock invariant. It returns the status, the
// decoded body and the state before the request.
func (fx *fuzzFixture) check(t *testing.T, req fuzzRequest, allowed endpointAnswers,
	mayWrite func(status int, answer map[string]any) bool) (int, map[string]any, fuzzState) {
	t.Helper()
	before := fx.state()
	fx.serve(req)
	status := fx.ctx.Response.StatusCode()
	body := fx.ctx.Response.Body()
	what := func() string {
		return "POST " + req.path + " " + quoteInput(req.body) + " headers " + quoteHeaders(req.headers) +
			": " + itoa(status) + " " + string(body) + "\n" + fx.log.String()
	}
	t.Logf("%s -> %d %s", quoteInput(req.body), status, body) // shown with -v
	fx.checkFuzzContract(t, req)
	codes, ok := allowed[status]
	if !ok {
		t.Fatalf("status not allowed by docs/API.md: %s", what())
	}
	var answer map[string]any
	if err := json.Unmarshal(body, &answer); err != nil || answer == nil {
		t.Fatalf("answer is not one JSON object (%v): %s", err, what())
	}
	if ct := string(fx.ctx.Response.Header.ContentType()); ct != "application/json" {
		t.Fatalf("Content-Type %q: %s", ct, what())
	}
	if status >= 400 {
		code, _ := answer["error"].(string)
		msg, _ := answer["message"].(string)
		if !slices.Contains(codes, code) || msg == "" {
			t.Fatalf("error code or message not allowed for %d: %s", status, what())
		}
		if field, _ := answer["field"].(string); code == "validation_failed" && field == "" {
			t.Fatalf("validation_failed without a field: %s", what())
		}
	}
	replayed := string(fx.ctx.Response.Header.Peek("Idempotent-Replayed")) == "true"
	after := fx.state()
	if status >= 400 || replayed {
		if !slices.Equal(before.products, after.products) {
			t.Fatalf("refused or replayed request changed the products from %+v to %+v: %s",
				before.products, after.products, what())
		}
		if after.records != before.records && (replayed || mayWrite == nil || !mayWrite(status, answer)) {
			t.Fatalf("refused or replayed request wrote %d records: %s", after.records-before.records, what())
		}
	}
	if err := fx.eng.CheckInvariant(); err != nil {
		t.Fatalf("%v: %s", err, what())
	}
	return status, answer, before
}

// quoteInput shows an input in a failure message, shortened if huge.
func quoteInput(b []byte) string {
	if len(b) > 200 {
		return strings.TrimSuffix(quote(b[:200]), `"`) + `..." (` + itoa(len(b)) + " bytes)"
	}
	return quote(b)
}

func quote(b []byte) string {
	q, _ := json.Marshal(string(b))
	return string(q)
}

func quoteHeaders(h [][2]string) string {
	var sb strings.Builder
	for _, kv := range h {
		sb.WriteString(kv[0] + "=" + quote([]byte(kv[1])) + " ")
	}
	return sb.String()
}

// waitReleased waits until product id has nothing reserved: an expiry fired
// by the fake clock is applied by the product's actor asynchronously.
func (fx *fuzzFixture) waitReleased(id uint64) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, _ := fx.eng.Product(id)
		if p.Reserved == 0 {
			return
		}
		if time.Now().After(deadline) {
			fx.tb.Fatalf("product %d still reserves %d units", id, p.Reserved)
		}
		time.Sleep(time.Millisecond)
	}
}

// mustHold makes a hold directly on the engine and returns its token.
func (fx *fuzzFixture) mustHold(productID uint64, qty int64) engine.HoldToken {
	r := fx.eng.CreateHold(productID, qty, nil)
	if r.Code != engine.OK {
		fx.tb.Fatalf("hold on %d: code %d", productID, r.Code)
	}
	return r.Hold.Token
}

// mustOrder turns a hold into an order directly on the engine.
func (fx *fuzzFixture) mustOrder(t engine.HoldToken) uint64 {
	r := fx.eng.CreateOrder(t)
	if r.Code != engine.OK {
		fx.tb.Fatalf("order of %s: code %d", t, r.Code)
	}
	return r.Order.ID
}
