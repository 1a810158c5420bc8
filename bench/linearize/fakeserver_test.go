package linearize

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// fault is a deliberate bug of the fake server.
type fault int

const (
	faultNone        fault = iota
	faultOverGrant         // a hold is granted with one unit fewer available than it needs
	faultDoubleApply       // a replayed webhook applies its payment again
	faultStaleRead         // product reads serve a snapshot up to 30 ms old
	faultLoseAcked         // at its 80th request, a "restart" forgets the last 3 holds it granted
)

func (f fault) String() string {
	return [...]string{"none", "over-grant", "double-apply", "stale-read", "lose-acked"}[f]
}

// fakeServer is a tiny in-process implementation of the API's hold, order,
// webhook and read paths, behind one mutex, with an optional fault. Without
// a fault it must pass the checker; with one it must not.
type fakeServer struct {
	fault fault
	url   string

	mu       sync.Mutex
	products map[uint64]*fakeProduct
	holds    map[string]*fakeHold
	orders   map[uint64]*fakeOrder
	nextID   uint64
	holdKeys map[string]fakeKeyed
	hookKeys map[string]fakeKeyed
	queued   map[uint64][]fakeEvent
	snapshot map[uint64]fakeProduct
	snapAt   time.Time
	requests int
	granted  []string // hold tokens, newest last
}

type fakeProduct struct {
	Product
	available, reserved, sold int64
}
type fakeHold struct {
	product *fakeProduct
	qty     int64
	orderID uint64
}
type fakeOrder struct {
	hold   *fakeHold
	token  string
	status string
	reason string
}
type fakeKeyed struct {
	fingerprint string
	status      int
	body        []byte
}
type fakeEvent struct {
	success bool
	reason  string
}

func startFake(t *testing.T, catalog []Product, f fault) *fakeServer {
	s := &fakeServer{fault: f, products: map[uint64]*fakeProduct{}, holds: map[string]*fakeHold{},
		orders: map[uint64]*fakeOrder{}, holdKeys: map[string]fakeKeyed{}, hookKeys: map[string]fakeKeyed{},
		queued: map[uint64][]fakeEvent{}}
	for _, p := range catalog {
		s.products[p.ID] = &fakeProduct{Product: p, available: p.TotalStock}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: s.handle}
	go srv.Serve(ln)
	t.Cleanup(func() { _ = srv.Shutdown() })
	s.url = "http://" + ln.Addr().String()
	return s
}

func (s *fakeServer) handle(ctx *fasthttp.RequestCtx) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.requests++; s.requests == 80 && s.fault == faultLoseAcked {
		s.forgetRecentHolds(3)
	}
	path, method := string(ctx.Path()), string(ctx.Method())
	key := string(ctx.Request.Header.Peek("Idempotency-Key"))
	var status int
	var body any
	switch {
	case method == "GET" && path == "/api/products":
		var list []any
		for id := uint64(1); id <= uint64(len(s.products)); id++ {
			list = append(list, s.productView(id))
		}
		status, body = 200, map[string]any{"products": list}
	case method == "GET" && strings.HasPrefix(path, "/api/products/"):
		id, _ := strconv.ParseUint(strings.TrimPrefix(path, "/api/products/"), 10, 64)
		status, body = 404, fakeErr("product_not_found")
		if _, ok := s.products[id]; ok {
			status, body = 200, s.productView(id)
		}
	case method == "POST" && path == "/api/holds":
		var req struct {
			ProductID uint64 `json:"product_id"`
			Qty       int64  `json:"qty"`
		}
		_ = json.Unmarshal(ctx.PostBody(), &req)
		s.keyed(ctx, s.holdKeys, key, fmt.Sprint(req.ProductID, req.Qty), func() (int, any) { return s.hold(req.ProductID, req.Qty) })
		return
	case method == "GET" && strings.HasPrefix(path, "/api/holds/"):
		status, body = s.holdView(strings.TrimPrefix(path, "/api/holds/"))
	case method == "POST" && path == "/api/orders":
		var req struct {
			Token string `json:"hold_token"`
		}
		_ = json.Unmarshal(ctx.PostBody(), &req)
		status, body = s.order(req.Token)
	case method == "GET" && strings.HasPrefix(path, "/api/orders/"):
		id, _ := strconv.ParseUint(strings.TrimPrefix(path, "/api/orders/"), 10, 64)
		status, body = 404, fakeErr("order_not_found")
		if o, ok := s.orders[id]; ok {
			status, body = 200, s.orderView(id, o)
		}
	case method == "POST" && path == "/api/payments/webhook":
		var req struct {
			Status  string `json:"status"`
			OrderID uint64 `json:"order_id"`
			Reason  string `json:"failure_reason"`
		}
		_ = json.Unmarshal(ctx.PostBody(), &req)
		ev := fakeEvent{success: req.Status == "success", reason: req.Reason}
		replayed := s.keyed(ctx, s.hookKeys, key, fmt.Sprint(req.OrderID, req.Status, req.Reason), func() (int, any) { return s.webhook(req.OrderID, ev) })
		if replayed && s.fault == faultDoubleApply {
			if o, ok := s.orders[req.OrderID]; ok && ev.success {
				o.hold.product.reserved -= o.hold.qty
				o.hold.product.sold += o.hold.qty
			}
		}
		return
	default:
		status, body = 404, fakeErr("not_found")
	}
	writeFake(ctx, status, body)
}

func fakeErr(code string) map[string]any { return map[string]any{"error": code, "message": code} }

func writeFake(ctx *fasthttp.RequestCtx, status int, body any) {
	data, _ := json.Marshal(body)
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(data)
}

// keyed runs f under an idempotency key: the first answer is kept and
// replayed. It reports whether this was a replay.
func (s *fakeServer) keyed(ctx *fasthttp.RequestCtx, keys map[string]fakeKeyed, key, fingerprint string, f func() (int, any)) bool {
	if k, ok := keys[key]; ok && key != "" {
		if k.fingerprint != fingerprint {
			writeFake(ctx, 422, fakeErr("idempotency_key_reused"))
			return false
		}
		ctx.Response.Header.Set("Idempotent-Replayed", "true")
		ctx.SetStatusCode(k.status)
		ctx.SetBody(k.body)
		return true
	}
	status, body := f()
	writeFake(ctx, status, body)
	if key != "" && (status < 400 || status == 409) {
		keys[key] = fakeKeyed{fingerprint: fingerprint, status: status, body: append([]byte(nil), ctx.Response.Body()...)}
	}
	return false
}

func (s *fakeServer) productView(id uint64) map[string]any {
	p := *s.products[id]
	if s.fault == faultStaleRead {
		if time.Since(s.snapAt) > 30*time.Millisecond {
			s.snapshot = map[uint64]fakeProduct{}
			for id, p := range s.products {
				s.snapshot[id] = *p
			}
			s.snapAt = time.Now()
		}
		p = s.snapshot[id]
	}
	return map[string]any{"id": id, "name": p.Name, "price_cents": p.PriceCents, "total_stock": p.TotalStock,
		"available_stock": p.available, "reserved_stock": p.reserved, "sold_stock": p.sold, "max_per_hold": p.MaxPerHold}
}

func (s *fakeServer) hold(productID uint64, qty int64) (int, any) {
	p, ok := s.products[productID]
	if !ok {
		return 404, fakeErr("product_not_found")
	}
	if qty < 1 || qty > p.MaxPerHold {
		return 422, fakeErr("validation_failed")
	}
	need := qty
	if s.fault == faultOverGrant {
		need--
	}
	if p.available < need {
		e := fakeErr("insufficient_stock")
		e["available_stock"] = p.available
		return 409, e
	}
	p.available -= qty
	p.reserved += qty
	raw := make([]byte, 16)
	_, _ = rand.Read(raw)
	token := hex.EncodeToString(raw)
	s.holds[token] = &fakeHold{product: p, qty: qty}
	s.granted = append(s.granted, token)
	return 201, map[string]any{"hold_token": token, "product_id": productID, "qty": qty, "expires_at": "2099-01-01T00:00:00.000Z"}
}

func (s *fakeServer) holdView(token string) (int, any) {
	h, ok := s.holds[token]
	if !ok {
		return 404, fakeErr("hold_not_found")
	}
	v := map[string]any{"hold_token": token, "product_id": h.product.ID, "qty": h.qty, "status": "active"}
	if h.orderID != 0 {
		v["status"], v["order_id"] = "ordered", h.orderID
	}
	return 200, v
}

func (s *fakeServer) order(token string) (int, any) {
	h, ok := s.holds[token]
	if !ok {
		return 404, fakeErr("hold_not_found")
	}
	if h.orderID != 0 {
		return 200, s.orderView(h.orderID, s.orders[h.orderID])
	}
	s.nextID++
	h.orderID = s.nextID
	o := &fakeOrder{hold: h, token: token, status: "pending"}
	s.orders[h.orderID] = o
	for _, ev := range s.queued[h.orderID] {
		s.pay(o, ev)
	}
	delete(s.queued, h.orderID)
	return 201, s.orderView(h.orderID, o)
}

func (s *fakeServer) orderView(id uint64, o *fakeOrder) map[string]any {
	v := map[string]any{"order_id": id, "product_id": o.hold.product.ID, "qty": o.hold.qty,
		"amount_cents": o.hold.qty * o.hold.product.PriceCents, "status": o.status, "hold_token": o.token}
	if o.reason != "" {
		v["failure_reason"] = o.reason
	}
	return v
}

func (s *fakeServer) webhook(id uint64, ev fakeEvent) (int, any) {
	o, ok := s.orders[id]
	if !ok {
		s.queued[id] = append(s.queued[id], ev)
		return 202, map[string]any{"order_id": id, "status": "queued"}
	}
	applied := s.pay(o, ev)
	return 200, map[string]any{"order_id": id, "status": o.status, "applied": applied}
}

func (s *fakeServer) pay(o *fakeOrder, ev fakeEvent) bool {
	if o.status != "pending" {
		return false
	}
	p := o.hold.product
	p.reserved -= o.hold.qty
	if ev.success {
		o.status = "paid"
		p.sold += o.hold.qty
	} else {
		o.status, o.reason = "cancelled", ev.reason
		p.available += o.hold.qty
	}
	return true
}

// forgetRecentHolds loses the last n holds granted that are still active,
// as a server that acknowledged them before they were durable would after
// a crash.
func (s *fakeServer) forgetRecentHolds(n int) {
	for i := len(s.granted) - 1; i >= 0 && n > 0; i-- {
		h := s.holds[s.granted[i]]
		if h.orderID != 0 {
			continue
		}
		delete(s.holds, s.granted[i])
		h.product.available += h.qty
		h.product.reserved -= h.qty
		n--
	}
}
