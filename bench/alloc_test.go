package bench

import (
	"net"
	"testing"

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
