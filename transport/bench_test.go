package transport

import (
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// nopJournal acknowledges at once and keeps nothing, so that benchmarks
// measure the front end and the engine, not a journal's copies.
type nopJournal struct{}

func (nopJournal) Submit(_ [][]byte, done func(error)) { done(nil) }

// benchFixture is a server on a nopJournal with one very deep product, an
// access log to io.Discard through the default sampler (the production
// logging path), and a reusable request context.
type benchFixture struct {
	eng *engine.Engine
	srv *Server
	ctx fasthttp.RequestCtx
}

func newBenchFixture(tb testing.TB) *benchFixture {
	cfg := engine.DefaultConfig()
	cfg.Journal = nopJournal{}
	cfg.OrderTTL = 0
	eng := engine.New(cfg)
	eng.Start()
	tb.Cleanup(eng.Stop)
	if _, err := eng.Seed([]engine.ProductSpec{
		{ID: 1, Name: "Deep", PriceCents: 100, TotalStock: 1_000_000_000_000, MaxPerHold: 1},
		{ID: 2, Name: "Empty", PriceCents: 100, TotalStock: 0, MaxPerHold: 1},
	}); err != nil {
		tb.Fatal(err)
	}
	f := &benchFixture{eng: eng, srv: New(eng, Options{Logger: zerolog.New(io.Discard)})}
	f.ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, nil)
	return f
}

// serve runs one request through Server.Handler on the reused context and
// returns the status.
func (f *benchFixture) serve(method, path string, body []byte, headers ...string) int {
	req := &f.ctx.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(path)
	req.Header.Del("Idempotency-Key")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	req.SetBody(body)
	f.ctx.Response.Reset()
	f.srv.Handler(&f.ctx)
	return f.ctx.Response.StatusCode()
}

func (f *benchFixture) mustServe(tb testing.TB, want int, method, path string, body []byte, headers ...string) {
	if got := f.serve(method, path, body, headers...); got != want {
		tb.Fatalf("%s %s: %d %s, want %d", method, path, got, f.ctx.Response.Body(), want)
	}
}

// holdTokens makes n holds directly on the engine and returns their tokens'
// text, to be ordered by the order benchmarks.
func (f *benchFixture) holdTokens(tb testing.TB, n int) [][]byte {
	tokens := make([][]byte, n)
	for i := range tokens {
		r := f.eng.CreateHold(1, 1, nil)
		if r.Code != engine.OK {
			tb.Fatal(r.Code)
		}
		tokens[i] = r.Hold.Token.AppendText(nil)
	}
	return tokens
}

func orderBody(token []byte) []byte {
	return append(append([]byte(`{"hold_token":"`), token...), `"}`...)
}

var (
	holdBody    = []byte(`{"product_id":1,"qty":1}`)
	holdBody409 = []byte(`{"product_id":2,"qty":1}`)
	paidBody    = []byte(`{"status":"success","order_id":1}`)
)

// freshKeysWarm is how many keys freshKeys sends before the measured ones:
// enough for every key shard to have made its first claim and its first
// arena chunk and index, which steady state has long done.
const freshKeysWarm = 4000

// freshKeys sends freshKeysWarm keys never used through warm, then returns
// n more never used, for the measured requests.
func (f *benchFixture) freshKeys(prefix string, n int, warm func(key string)) []string {
	for i := 0; i < freshKeysWarm; i++ {
		warm(prefix + "warm-" + strconv.Itoa(i))
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = prefix + strconv.Itoa(i)
	}
	return keys
}

// hotPaths are the steady-state requests docs/API.md's clients send most; each
// must allocate nothing in the front end. setup runs once before measuring.
type hotPath struct {
	name  string
	setup func(tb testing.TB, f *benchFixture, n int) func(i int) int // for n runs; returns the status
	want  int
}

var hotPaths = []hotPath{
	{"GET product", func(tb testing.TB, f *benchFixture, n int) func(int) int {
		return func(int) int { return f.serve("GET", "/api/products/1", nil) }
	}, 200},
	{"GET products", func(tb testing.TB, f *benchFixture, n int) func(int) int {
		return func(int) int { return f.serve("GET", "/api/products", nil) }
	}, 200},
	{"POST hold 201", func(tb testing.TB, f *benchFixture, n int) func(int) int {
		return func(int) int { return f.serve("POST", "/api/holds", holdBody) }
	}, 201},
	{"POST hold 409", func(tb testing.TB, f *benchFixture, n int) func(int) int {
		return func(int) int { return f.serve("POST", "/api/holds", holdBody409) }
	}, 409},
	{"POST hold replayed key", func(tb testing.TB, f *benchFixture, n int) func(int) int {
		f.mustServe(tb, 201, "POST", "/api/holds", holdBody, "Idempotency-Key", "bench-hold")
		return func(int) int { return f.serve("POST", "/api/holds", holdBody, "Idempotency-Key", "bench-hold") }
	}, 201},
	{"POST hold fresh key", func(tb testing.TB, f *benchFixture, n int) func(int) int {
		keys := f.freshKeys("hold-", n, func(key string) {
			f.mustServe(tb, 201, "POST", "/api/holds", holdBody, "Idempotency-Key", key)
		})
		return func(i int) int { return f.serve("POST", "/api/holds", holdBody, "Idempotency-Key", keys[i]) }
	}, 201},
	{"GET hold", func(tb testing.TB, f *benchFixture, n int) func(int) int {
		path := "/api/holds/" + string(f.holdTokens(tb, 1)[0])
		return func(int) int { return f.serve("GET", path, nil) }
	}, 200},
	{"POST order 201", func(tb testing.TB, f *benchFixture, n int) func(int) int {
		tokens := f.holdTokens(tb, n)
		bodies := make([][]byte, len(tokens))
		for i := range tokens {
			bodies[i] = orderBody(tokens[i])
		}
		return func(i int) int { return f.serve("POST", "/api/orders", bodies[i]) }
	}, 201},
	{"POST order 200 repeat", func(tb testing.TB, f *benchFixture, n int) func(int) int {
		body := orderBody(f.holdTokens(tb, 1)[0])
		f.mustServe(tb, 201, "POST", "/api/orders", body)
		return func(int) int { return f.serve("POST", "/api/orders", body) }
	}, 200},
	{"GET order", func(tb testing.TB, f *benchFixture, n int) func(int) int {
		f.mustServe(tb, 201, "POST", "/api/orders", orderBody(f.holdTokens(tb, 1)[0]))
		return func(int) int { return f.serve("GET", "/api/orders/1", nil) }
	}, 200},
	{"POST webhook replayed key", func(tb testing.TB, f *benchFixture, n int) func(int) int {
		f.mustServe(tb, 201, "POST", "/api/orders", orderBody(f.holdTokens(tb, 1)[0]))
		f.mustServe(tb, 200, "POST", "/api/payments/webhook", paidBody, "Idempotency-Key", "bench-evt")
		return func(int) int {
			return f.serve("POST", "/api/payments/webhook", paidBody, "Idempotency-Key", "bench-evt")
		}
	}, 200},
	{"POST webhook fresh key", func(tb testing.TB, f *benchFixture, n int) func(int) int {
		f.mustServe(tb, 201, "POST", "/api/orders", orderBody(f.holdTokens(tb, 1)[0]))
		keys := f.freshKeys("evt-", n, func(key string) {
			f.mustServe(tb, 200, "POST", "/api/payments/webhook", paidBody, "Idempotency-Key", key)
		})
		return func(i int) int { return f.serve("POST", "/api/payments/webhook", paidBody, "Idempotency-Key", keys[i]) }
	}, 200},
	{"POST webhook signed, replayed key", func(tb testing.TB, f *benchFixture, n int) func(int) int {
		f.srv = New(f.eng, Options{Logger: zerolog.New(io.Discard), WebhookSecret: []byte(testSecret)})
		f.mustServe(tb, 201, "POST", "/api/orders", orderBody(f.holdTokens(tb, 1)[0]))
		sig := sign(testSecret, time.Now().Unix(), string(paidBody))
		f.mustServe(tb, 200, "POST", "/api/payments/webhook", paidBody, "Idempotency-Key", "signed", "X-Signature", sig)
		return func(int) int {
			return f.serve("POST", "/api/payments/webhook", paidBody, "Idempotency-Key", "signed", "X-Signature", sig)
		}
	}, 200},
}

// TestHotPathsAllocateNothing is the claim of the issue as a test: in steady
// state, the hold, order, webhook and product-read paths allocate nothing
// per request (front end and engine together, on a journal that keeps
// nothing). Map growth in the engine is amortised to zero over the runs.
func TestHotPathsAllocateNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	for _, hp := range hotPaths {
		t.Run(hp.name, func(t *testing.T) {
			f := newBenchFixture(t)
			const runs = 1000
			run := hp.setup(t, f, runs+1) // AllocsPerRun adds a warm-up run
			i := 0
			var bad int
			allocs := testing.AllocsPerRun(runs, func() {
				if run(i) != hp.want {
					bad++
				}
				i++
			})
			if bad > 0 {
				t.Fatalf("%d requests did not answer %d", bad, hp.want)
			}
			if allocs != 0 {
				t.Errorf("%.1f allocations per request, want 0", allocs)
			}
		})
	}
}

// BenchmarkHandler measures each hot path through Server.Handler on a
// reused RequestCtx: the front end and the engine, no network.
func BenchmarkHandler(b *testing.B) {
	for _, hp := range hotPaths {
		b.Run(hp.name, func(b *testing.B) {
			f := newBenchFixture(b)
			run := hp.setup(b, f, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if got := run(i); got != hp.want {
					b.Fatalf("status %d, want %d", got, hp.want)
				}
			}
		})
	}
}

// BenchmarkWebhookFreshKey is a webhook under a new key each time: the
// engine remembers every key in its arena and reuses the key's claim, so
// neither it nor the front end allocates per request.
func BenchmarkWebhookFreshKey(b *testing.B) {
	f := newBenchFixture(b)
	f.mustServe(b, 201, "POST", "/api/orders", orderBody(f.holdTokens(b, 1)[0]))
	benchFreshKeys(b, f, "evt-", "/api/payments/webhook", paidBody, 200)
}

// benchFreshKeys posts body to path b.N times, each under a new
// Idempotency-Key (prefix and a counter), each expected to answer want.
func benchFreshKeys(b *testing.B, f *benchFixture, prefix, path string, body []byte, want int) {
	key := make([]byte, 0, 32)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		key = strconv.AppendInt(append(key[:0], prefix...), int64(i), 10)
		if got := f.serve("POST", path, body, "Idempotency-Key", string(key)); got != want {
			b.Fatalf("status %d, want %d", got, want)
		}
	}
}

// BenchmarkInmemoryHTTP sends requests through a real fasthttp server and
// client over fasthttputil's in-memory listener: HTTP parsing and writing
// included. Allocations counted here include the client's.
func BenchmarkInmemoryHTTP(b *testing.B) {
	for _, c := range []struct {
		name, method, path string
		body               []byte
		want               int
	}{
		{"GET product", "GET", "/api/products/1", nil, 200},
		{"POST hold 201", "POST", "/api/holds", holdBody, 201},
		{"POST hold 409", "POST", "/api/holds", holdBody409, 409},
	} {
		b.Run(c.name, func(b *testing.B) {
			f := newBenchFixture(b)
			ln := fasthttputil.NewInmemoryListener()
			hs := f.srv.HTTPServer()
			done := make(chan struct{})
			go func() { defer close(done); _ = hs.Serve(f.srv.Listener(ln)) }()
			b.Cleanup(func() { _ = hs.Shutdown(); <-done })
			// A short idle time lets the client's connection cleaner exit
			// soon after the benchmark, for goleak.
			client := &fasthttp.HostClient{Addr: "bench", MaxIdleConnDuration: 50 * time.Millisecond,
				Dial: func(string) (net.Conn, error) { return ln.Dial() }}
			b.Cleanup(client.CloseIdleConnections)
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			req.Header.SetMethod(c.method)
			req.SetRequestURI("http://bench" + c.path)
			req.SetBody(c.body)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				req.Header.SetMethod(c.method)
				req.SetRequestURI("http://bench" + c.path)
				for pb.Next() {
					req.SetBody(c.body)
					if err := client.Do(req, resp); err != nil || resp.StatusCode() != c.want {
						b.Errorf("%v %d %s", err, resp.StatusCode(), resp.Body())
						return
					}
				}
			})
			fasthttp.ReleaseRequest(req)
			fasthttp.ReleaseResponse(resp)
		})
	}
}

// BenchmarkHoldFreshKey is BenchmarkWebhookFreshKey for POST /api/holds:
// a keyed hold under a new key each time, to set beside POST hold 201.
func BenchmarkHoldFreshKey(b *testing.B) {
	benchFreshKeys(b, newBenchFixture(b), "hold-", "/api/holds", holdBody, 201)
}
