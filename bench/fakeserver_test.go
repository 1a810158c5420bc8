package bench

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"
)

// fakeFaults makes the fake server break the contract on purpose, so that
// tests can check that flashbench notices.
type fakeFaults struct {
	reportTotalPlusOne   bool // report total_stock one above the real total
	oversellUnits        int64
	applyEveryWebhook    bool // apply contrary events: a final state changes
	replayWithoutHeader  bool // replay idempotent answers without the header
	notQueueEarlyWebhook bool // answer 404 to webhooks for unknown orders
	loseSuccesses        bool // answer applied:true to successes, change nothing
}

type fakeProduct struct {
	Product
	oversold int64
}

type fakeHold struct {
	token     string
	productID int64
	qty       int64
	orderID   int64
}

type fakeOrder struct {
	id        int64
	productID int64
	qty       int64
	status    string
	token     string
}

type storedAnswer struct {
	body   []byte
	status int
	answer []byte
}

// fakeServer is a small in-memory implementation of docs/API.md, enough for
// flashbench's workloads: products, holds (no expiry), orders, webhooks
// with idempotency keys and queued early events, admin product creation.
type fakeServer struct {
	t          testing.TB
	faults     fakeFaults
	secret     string
	adminToken string

	mu          sync.Mutex
	products    map[int64]*fakeProduct
	nextProduct int64
	holds       map[string]*fakeHold
	nextHold    int64
	orders      map[int64]*fakeOrder
	nextOrder   int64
	holdKeys    map[string]storedAnswer
	webhookKeys map[string]storedAnswer
	queued      map[int64][]bool // order id → success flags of queued events

	ln  net.Listener
	srv *fasthttp.Server
}

// startFakeServer serves products (id → stock, max_per_hold 5) on a loopback
// port until the test ends.
func startFakeServer(t testing.TB, stock map[int64]int64, faults fakeFaults) *fakeServer {
	f := &fakeServer{
		t: t, faults: faults, adminToken: "admin",
		products: map[int64]*fakeProduct{}, holds: map[string]*fakeHold{}, orders: map[int64]*fakeOrder{},
		holdKeys: map[string]storedAnswer{}, webhookKeys: map[string]storedAnswer{}, queued: map[int64][]bool{},
	}
	for id, n := range stock {
		f.products[id] = &fakeProduct{Product: Product{ID: id, Name: "p" + strconv.FormatInt(id, 10), PriceCents: 100,
			TotalStock: n, AvailableStock: n, MaxPerHold: 5}}
		f.nextProduct = max(f.nextProduct, id)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.ln = ln
	f.srv = &fasthttp.Server{Handler: f.handle}
	go func() { _ = f.srv.Serve(ln) }()
	t.Cleanup(func() { _ = f.srv.Shutdown() })
	return f
}

func (f *fakeServer) url() string { return "http://" + f.ln.Addr().String() }

func writeJSON(ctx *fasthttp.RequestCtx, status int, body []byte) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

func writeError(ctx *fasthttp.RequestCtx, status int, code string) {
	writeJSON(ctx, status, fmt.Appendf(nil, `{"error":%q,"message":"fake"}`, code))
}

func (f *fakeServer) handle(ctx *fasthttp.RequestCtx) {
	f.mu.Lock()
	defer f.mu.Unlock()
	path, method := string(ctx.Path()), string(ctx.Method())
	switch {
	case method == "GET" && path == "/healthz":
		writeJSON(ctx, 200, []byte(`{"status":"ok"}`))
	case method == "GET" && path == "/api/products":
		f.listProducts(ctx)
	case method == "GET" && strings.HasPrefix(path, "/api/products/"):
		id, _ := strconv.ParseInt(strings.TrimPrefix(path, "/api/products/"), 10, 64)
		p, ok := f.products[id]
		if !ok {
			writeError(ctx, 404, "product_not_found")
			return
		}
		writeJSON(ctx, 200, f.productJSON(nil, p))
	case method == "POST" && path == "/api/holds":
		f.idempotent(ctx, f.holdKeys, string(ctx.Request.Header.Peek("Idempotency-Key")), f.createHold)
	case method == "GET" && strings.HasPrefix(path, "/api/holds/"):
		f.getHold(ctx, strings.TrimPrefix(path, "/api/holds/"))
	case method == "POST" && path == "/api/orders":
		f.createOrder(ctx)
	case method == "GET" && strings.HasPrefix(path, "/api/orders/"):
		id, _ := strconv.ParseInt(strings.TrimPrefix(path, "/api/orders/"), 10, 64)
		o, ok := f.orders[id]
		if !ok {
			writeError(ctx, 404, "order_not_found")
			return
		}
		writeJSON(ctx, 200, orderJSON(o))
	case method == "POST" && path == "/api/payments/webhook":
		f.webhook(ctx)
	case method == "POST" && path == "/api/admin/products":
		f.adminCreate(ctx)
	default:
		writeError(ctx, 404, "not_found")
	}
}

func (f *fakeServer) productJSON(dst []byte, p *fakeProduct) []byte {
	total := p.TotalStock
	if f.faults.reportTotalPlusOne {
		total++
	}
	return fmt.Appendf(dst, `{"id":%d,"name":%q,"price_cents":%d,"total_stock":%d,"available_stock":%d,"reserved_stock":%d,"sold_stock":%d,"max_per_hold":%d}`,
		p.ID, p.Name, p.PriceCents, total, p.AvailableStock, p.ReservedStock, p.SoldStock, p.MaxPerHold)
}

func (f *fakeServer) listProducts(ctx *fasthttp.RequestCtx) {
	b := []byte(`{"products":[`)
	for id := int64(1); id <= f.nextProduct; id++ {
		if p, ok := f.products[id]; ok {
			if b[len(b)-1] == '}' {
				b = append(b, ',')
			}
			b = f.productJSON(b, p)
		}
	}
	writeJSON(ctx, 200, append(b, "]}"...))
}

// idempotent replays the stored answer of key (with the same body), or
// computes and stores a new one.
func (f *fakeServer) idempotent(ctx *fasthttp.RequestCtx, store map[string]storedAnswer, key string, compute func(body []byte) (int, []byte)) {
	body := ctx.PostBody()
	if key != "" {
		if a, ok := store[key]; ok {
			if !bytes.Equal(a.body, body) {
				writeError(ctx, 422, "idempotency_key_reused")
				return
			}
			if !f.faults.replayWithoutHeader {
				ctx.Response.Header.Set("Idempotent-Replayed", "true")
			}
			writeJSON(ctx, a.status, a.answer)
			return
		}
	}
	status, answer := compute(body)
	if key != "" {
		store[key] = storedAnswer{body: bytes.Clone(body), status: status, answer: answer}
	}
	writeJSON(ctx, status, answer)
}

func (f *fakeServer) createHold(body []byte) (int, []byte) {
	var req struct{ ProductID, Qty int64 }
	if err := json.Unmarshal(body, &struct {
		ProductID *int64 `json:"product_id"`
		Qty       *int64 `json:"qty"`
	}{&req.ProductID, &req.Qty}); err != nil {
		return 400, []byte(`{"error":"invalid_json","message":"fake"}`)
	}
	p, ok := f.products[req.ProductID]
	if !ok {
		return 404, []byte(`{"error":"product_not_found","message":"fake"}`)
	}
	if req.Qty < 1 || req.Qty > p.MaxPerHold {
		return 422, []byte(`{"error":"validation_failed","message":"fake","field":"qty"}`)
	}
	switch {
	case p.AvailableStock >= req.Qty:
		p.AvailableStock -= req.Qty
		p.ReservedStock += req.Qty
	case p.oversold+req.Qty <= f.faults.oversellUnits:
		p.oversold += req.Qty // granted without any stock, and not counted
	default:
		return 409, fmt.Appendf(nil, `{"error":"insufficient_stock","message":"fake","available_stock":%d}`, p.AvailableStock)
	}
	f.nextHold++
	h := &fakeHold{token: fmt.Sprintf("tok%032d", f.nextHold), productID: p.ID, qty: req.Qty}
	f.holds[h.token] = h
	return 201, fmt.Appendf(nil, `{"hold_token":%q,"product_id":%d,"qty":%d,"expires_at":"2030-01-01T00:00:00.000Z"}`, h.token, h.productID, h.qty)
}

func (f *fakeServer) getHold(ctx *fasthttp.RequestCtx, token string) {
	h, ok := f.holds[token]
	if !ok {
		writeError(ctx, 404, "hold_not_found")
		return
	}
	status := "active"
	if h.orderID != 0 {
		status = "ordered"
	}
	writeJSON(ctx, 200, fmt.Appendf(nil, `{"hold_token":%q,"product_id":%d,"qty":%d,"status":%q,"order_id":%d}`, h.token, h.productID, h.qty, status, h.orderID))
}

func orderJSON(o *fakeOrder) []byte {
	return fmt.Appendf(nil, `{"order_id":%d,"product_id":%d,"qty":%d,"amount_cents":%d,"status":%q,"hold_token":%q}`,
		o.id, o.productID, o.qty, o.qty*100, o.status, o.token)
}

func (f *fakeServer) createOrder(ctx *fasthttp.RequestCtx) {
	var req struct {
		HoldToken string `json:"hold_token"`
	}
	if err := json.Unmarshal(ctx.PostBody(), &req); err != nil {
		writeError(ctx, 400, "invalid_json")
		return
	}
	h, ok := f.holds[req.HoldToken]
	if !ok {
		writeError(ctx, 404, "hold_not_found")
		return
	}
	if h.orderID != 0 {
		writeJSON(ctx, 200, orderJSON(f.orders[h.orderID]))
		return
	}
	f.nextOrder++
	o := &fakeOrder{id: f.nextOrder, productID: h.productID, qty: h.qty, status: statusPending, token: h.token}
	f.orders[o.id] = o
	h.orderID = o.id
	for _, success := range f.queued[o.id] {
		f.apply(o, success)
	}
	delete(f.queued, o.id)
	writeJSON(ctx, 201, orderJSON(o))
}

// apply applies a payment event and reports whether it changed the order.
func (f *fakeServer) apply(o *fakeOrder, success bool) bool {
	if o.status != statusPending && !f.faults.applyEveryWebhook {
		return false
	}
	if success && f.faults.loseSuccesses {
		return true
	}
	p := f.products[o.productID]
	if o.status == statusPaid {
		p.SoldStock -= o.qty
		p.ReservedStock += o.qty
	} else if o.status == statusCancelled {
		p.AvailableStock -= o.qty
		p.ReservedStock += o.qty
	}
	p.ReservedStock -= o.qty
	if success {
		o.status = statusPaid
		p.SoldStock += o.qty
	} else {
		o.status = statusCancelled
		p.AvailableStock += o.qty
	}
	return true
}

func (f *fakeServer) webhook(ctx *fasthttp.RequestCtx) {
	if f.secret != "" && !validSignature(f.secret, string(ctx.Request.Header.Peek("X-Signature")), ctx.PostBody()) {
		writeError(ctx, 401, "invalid_signature")
		return
	}
	key := string(ctx.Request.Header.Peek("Idempotency-Key"))
	if key == "" {
		writeError(ctx, 400, "idempotency_key_required")
		return
	}
	f.idempotent(ctx, f.webhookKeys, key, func(body []byte) (int, []byte) {
		var req struct {
			Status  string `json:"status"`
			OrderID int64  `json:"order_id"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return 400, []byte(`{"error":"invalid_json","message":"fake"}`)
		}
		o, ok := f.orders[req.OrderID]
		if !ok {
			if f.faults.notQueueEarlyWebhook {
				return 404, []byte(`{"error":"order_not_found","message":"fake"}`)
			}
			f.queued[req.OrderID] = append(f.queued[req.OrderID], req.Status == "success")
			return 202, fmt.Appendf(nil, `{"order_id":%d,"status":"queued"}`, req.OrderID)
		}
		applied := f.apply(o, req.Status == "success")
		return 200, fmt.Appendf(nil, `{"order_id":%d,"status":%q,"applied":%v}`, o.id, o.status, applied)
	})
}

func validSignature(secret, header string, body []byte) bool {
	t, v1, ok := strings.Cut(strings.TrimPrefix(header, "t="), ",v1=")
	if !ok {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(t + "."))
	mac.Write(body)
	want := hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(want), []byte(v1))
}

func (f *fakeServer) adminCreate(ctx *fasthttp.RequestCtx) {
	if string(ctx.Request.Header.Peek("Authorization")) != "Bearer "+f.adminToken {
		writeError(ctx, 401, "unauthorized")
		return
	}
	var req struct {
		Name       string `json:"name"`
		PriceCents int64  `json:"price_cents"`
		TotalStock int64  `json:"total_stock"`
		MaxPerHold int64  `json:"max_per_hold"`
	}
	if err := json.Unmarshal(ctx.PostBody(), &req); err != nil {
		writeError(ctx, 400, "invalid_json")
		return
	}
	if req.MaxPerHold == 0 {
		req.MaxPerHold = 10
	}
	f.nextProduct++
	p := &fakeProduct{Product: Product{ID: f.nextProduct, Name: req.Name, PriceCents: req.PriceCents,
		TotalStock: req.TotalStock, AvailableStock: req.TotalStock, MaxPerHold: req.MaxPerHold}}
	f.products[p.ID] = p
	writeJSON(ctx, 201, f.productJSON(nil, p))
}
