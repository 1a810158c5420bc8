package bench

import (
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// startConstantServer serves handler on a loopback port in this process.
func startConstantServer(t *testing.T, handler fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: handler}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// The steady-state request paths of browse and hot allocate nothing on the
// client side (the in-process fasthttp server allocates nothing either, so
// the count covers both).
func TestSteadyStateRequestsDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector (sync.Pool drops items)")
	}
	rejected := []byte(`{"error":"insufficient_stock","message":"no","available_stock":0}`)
	addr := startConstantServer(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentTypeBytes(jsonContentType)
		if ctx.IsPost() {
			ctx.SetStatusCode(409)
			ctx.SetBody(rejected)
			return
		}
		ctx.SetBody(ceilingProductBody)
	})
	tgt := newTarget(addr, 1, "", "")
	defer tgt.close()
	rec := newRecorder(1)
	w := newWorker(0, tgt, rec, 1)
	productPath := []byte("/api/products/1")
	holdBody := []byte(`{"product_id":1,"qty":1}`)
	read := func() { w.call(EndpointProductGet, methodGet, productPath, nil, requestOptions{skipParseOK: true}) }
	hold := func() {
		r := w.call(EndpointHoldCreate, methodPost, holdsPath, holdBody, requestOptions{})
		if r.status != 409 || r.json == nil || r.json.GetInt64("available_stock") != 0 {
			t.Fatalf("hold answered %s", r.describe())
		}
	}
	read()
	hold() // warm up: connection, buffers, first error code
	if n := testing.AllocsPerRun(200, read); n > 0 {
		t.Errorf("a product read allocates %.1f times per request, want 0", n)
	}
	if n := testing.AllocsPerRun(200, hold); n > 0 {
		t.Errorf("a rejected hold allocates %.1f times per request, want 0", n)
	}
}

// A hot (or grants) op allocates nothing on the client, answered 201 or 409:
// its phase latency goes into a shard's histogram and a granted hold's token
// into the workload's arena of large chunks.
func TestHotOpDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector (sync.Pool drops items)")
	}
	granted := []byte(`{"hold_token":"h_1_0123456789abcdef0123456789abcdef","product_id":1,"qty":1,"status":"active","expires_at":"2030-01-01T00:00:00Z"}`)
	rejected := []byte(`{"error":"insufficient_stock","message":"no","available_stock":0}`)
	var grant bool
	addr := startConstantServer(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentTypeBytes(jsonContentType)
		if grant {
			ctx.SetStatusCode(201)
			ctx.SetBody(granted)
			return
		}
		ctx.SetStatusCode(409)
		ctx.SetBody(rejected)
	})
	tgt := newTarget(addr, 1, "", "")
	defer tgt.close()
	rec := newRecorder(1)
	w := newWorker(0, tgt, rec, 1)
	h := newHotWorkload(Config{Workload: "hot"}, 1)
	h.holdPath, h.holdBody, h.start = holdsPath, []byte(`{"product_id":1,"qty":1}`), time.Now()

	grant = true
	h.op(w) // warm up: connection, buffers, first histogram and chunk
	if n := testing.AllocsPerRun(200, func() { h.op(w) }); n > 0 {
		t.Errorf("a granted hold allocates %.1f times per op, want 0", n)
	}
	grant = false
	h.op(w)
	if n := testing.AllocsPerRun(200, func() { h.op(w) }); n > 0 {
		t.Errorf("a rejected hold allocates %.1f times per op, want 0", n)
	}
	phases := rec.phaseTotals()
	if g, s := phases[phaseGranted].TotalCount(), phases[phaseSoldOut].TotalCount(); g != 202 || s != 202 {
		t.Errorf("phases recorded %d grants and %d rejects, want 202 of each", g, s)
	}
	if got := h.tokens.strings(); len(got) != 202 || got[201] != "h_1_0123456789abcdef0123456789abcdef" {
		t.Errorf("kept %d tokens (last %q), want 202 copies of the token", len(got), got[len(got)-1])
	}
}
