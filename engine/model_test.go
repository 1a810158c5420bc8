package engine

import (
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// The model is a plain sequential rendering of docs/API.md's rules, written
// without the engine's structures, to check the engine against.
type model struct {
	now       time.Time
	cfg       Config
	products  map[uint64]*modelProduct
	holds     []*modelHold
	orders    map[uint64]*modelOrder
	lastOrder uint64
	holdKeys  map[string]modelKey
	payKeys   map[string]modelKey
	queued    map[uint64][]modelQueued
}

type modelProduct struct {
	spec                             ProductSpec
	total, available, reserved, sold int64
}

type modelHold struct {
	token   HoldToken
	pid     uint64
	qty     int64
	expires time.Time
	status  HoldStatus
	orderID uint64
}

type modelOrder struct {
	pid      uint64
	qty      int64
	status   OrderStatus
	deadline time.Time // zero when off
}

type modelKey struct {
	fp      string
	hold    HoldReply
	payment PaymentReply
}

type modelQueued struct {
	success  bool
	deadline time.Time
}

// expire releases what is due at m.now, as the engine does on its next step.
func (m *model) expire() {
	for _, h := range m.holds {
		if h.status == HoldActive && !m.now.Before(h.expires) {
			h.status = HoldExpired
			p := m.products[h.pid]
			p.available += h.qty
			p.reserved -= h.qty
		}
	}
	for _, o := range m.orders {
		if o.status == OrderPending && !o.deadline.IsZero() && !m.now.Before(o.deadline) {
			m.settle(o, false)
		}
	}
}

func (m *model) settle(o *modelOrder, success bool) {
	p := m.products[o.pid]
	p.reserved -= o.qty
	if success {
		o.status = OrderPaid
		p.sold += o.qty
	} else {
		o.status = OrderCancelled
		p.available += o.qty
	}
}

func (m *model) hold(pid uint64, qty int64, key string) HoldReply {
	p := m.products[pid]
	switch {
	case p == nil:
		return HoldReply{Code: CodeProductNotFound}
	case qty > p.spec.MaxPerHold:
		return HoldReply{Code: CodeQtyAboveMax}
	}
	fp := fmt.Sprint(pid, qty)
	if k, ok := m.holdKeys[key]; key != "" && ok {
		if k.fp != fp {
			return HoldReply{Code: CodeKeyReused}
		}
		r := k.hold
		r.Replayed = true
		return r
	}
	var r HoldReply
	if qty > p.available {
		r = HoldReply{Code: CodeInsufficientStock, Available: p.available}
	} else {
		p.available -= qty
		p.reserved += qty
		r = HoldReply{Code: OK, Hold: Hold{ProductID: pid, Qty: qty, ExpiresAt: m.now.Add(m.cfg.HoldTTL), Status: HoldActive}}
	}
	if key != "" {
		m.holdKeys[key] = modelKey{fp: fp, hold: r}
	}
	return r
}

func (m *model) order(h *modelHold) OrderReply {
	switch {
	case h == nil:
		return OrderReply{Code: CodeHoldNotFound}
	case h.status == HoldOrdered:
		return OrderReply{Code: OK, Order: Order{ID: h.orderID, Status: m.orders[h.orderID].status}}
	case h.status == HoldExpired:
		return OrderReply{Code: CodeHoldExpired}
	}
	m.lastOrder++
	o := &modelOrder{pid: h.pid, qty: h.qty, status: OrderPending}
	if m.cfg.OrderTTL > 0 {
		o.deadline = m.now.Add(m.cfg.OrderTTL)
	}
	m.orders[m.lastOrder] = o
	h.status, h.orderID = HoldOrdered, m.lastOrder
	for _, q := range m.queued[m.lastOrder] {
		if q.deadline.After(m.now) && o.status == OrderPending {
			m.settle(o, q.success)
		}
	}
	delete(m.queued, m.lastOrder)
	return OrderReply{Code: OK, Created: true, Order: Order{ID: m.lastOrder, Status: o.status}}
}

func (m *model) pay(id uint64, success bool, key string) PaymentReply {
	fp := fmt.Sprint(id, success)
	if k, ok := m.payKeys[key]; ok {
		if k.fp != fp {
			return PaymentReply{Code: CodeKeyReused}
		}
		r := k.payment
		r.Replayed = true
		return r
	}
	var r PaymentReply
	if o := m.orders[id]; o == nil {
		m.queued[id] = append(m.queued[id], modelQueued{success: success, deadline: m.now.Add(m.cfg.QueuedWebhookTTL)})
		r = PaymentReply{Code: OK, OrderID: id, Queued: true}
	} else {
		applied := o.status == OrderPending
		if applied {
			m.settle(o, success)
		}
		r = PaymentReply{Code: OK, OrderID: id, Status: o.status, Applied: applied}
	}
	m.payKeys[key] = modelKey{fp: fp, payment: r}
	return r
}

// TestEngineMatchesModel drives the engine with random command sequences on
// several products and compares every answer and every product's counts
// with the model after each step; restarts replay the journal at random
// points and check that the replayed state equals the live one.
func TestEngineMatchesModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		specs := []ProductSpec{
			{ID: 1, Name: "A", PriceCents: 7, TotalStock: rapid.Int64Range(0, 6).Draw(rt, "stock1"), MaxPerHold: 3},
			{ID: 2, Name: "B", PriceCents: 11, TotalStock: rapid.Int64Range(0, 4).Draw(rt, "stock2"), MaxPerHold: 2},
			{ID: 4, Name: "C", PriceCents: 13, TotalStock: rapid.Int64Range(1, 10).Draw(rt, "stock4"), MaxPerHold: 5},
		}
		// Refusals from the durable counts must not change a single answer,
		// expiry by the clock included.
		fromDurable := rapid.Bool().Draw(rt, "refuseFromDurableCounts")
		te := newTestEngineConfigured(t, func(c *Config) { c.RefuseFromDurableCounts = fromDurable }, specs...)
		defer te.Stop()
		m := &model{now: testEpoch, cfg: te.cfg, products: map[uint64]*modelProduct{}, orders: map[uint64]*modelOrder{},
			holdKeys: map[string]modelKey{}, payKeys: map[string]modelKey{}, queued: map[uint64][]modelQueued{}}
		for _, s := range specs {
			m.products[s.ID] = &modelProduct{spec: s, total: s.TotalStock, available: s.TotalStock}
		}
		pickHold := func(rt *rapid.T) (*modelHold, HoldToken) {
			if len(m.holds) == 0 || rapid.IntRange(0, 9).Draw(rt, "bogus") == 0 {
				return nil, HoldToken{ProductID: 1, Secret: [16]byte{9}}
			}
			h := m.holds[rapid.IntRange(0, len(m.holds)-1).Draw(rt, "hold")]
			return h, h.token
		}
		rt.Repeat(map[string]func(*rapid.T){
			"hold": func(rt *rapid.T) {
				pid := rapid.SampledFrom([]uint64{1, 2, 4, 9}).Draw(rt, "pid")
				qty := rapid.Int64Range(1, 4).Draw(rt, "qty")
				key := rapid.SampledFrom([]string{"", "", "k1", "k2"}).Draw(rt, "key")
				want := m.hold(pid, qty, key)
				got := te.CreateHold(pid, qty, []byte(key))
				if want.Code == OK && !want.Replayed {
					m.holds = append(m.holds, &modelHold{token: got.Hold.Token, pid: pid, qty: qty, expires: want.Hold.ExpiresAt, status: HoldActive})
					if k, ok := m.holdKeys[key]; ok {
						k.hold.Hold.Token = got.Hold.Token
						m.holdKeys[key] = k
					}
					want.Hold.Token = got.Hold.Token
				}
				if got.Code != want.Code || got.Available != want.Available || got.Replayed != want.Replayed ||
					(want.Code == OK && (got.Hold.Token != want.Hold.Token || got.Hold.Qty != qty || !got.Hold.ExpiresAt.Equal(want.Hold.ExpiresAt))) {
					rt.Fatalf("hold(%d, %d, %q) = %+v, model says %+v", pid, qty, key, got, want)
				}
			},
			"order": func(rt *rapid.T) {
				h, tok := pickHold(rt)
				want := m.order(h)
				got := te.CreateOrder(tok)
				if got.Code != want.Code || got.Created != want.Created || got.Order.ID != want.Order.ID || got.Order.Status != want.Order.Status {
					rt.Fatalf("order(%s) = %+v, model says %+v", tok, got, want)
				}
			},
			"getHold": func(rt *rapid.T) {
				h, tok := pickHold(rt)
				got, code := te.GetHold(tok)
				if h == nil {
					if code != CodeHoldNotFound {
						rt.Fatalf("GetHold(bogus) = %s", code)
					}
					return
				}
				if code != OK || got.Status != h.status || got.OrderID != h.orderID {
					rt.Fatalf("GetHold = %+v %s, model %+v", got, code, *h)
				}
			},
			"pay": func(rt *rapid.T) {
				id := rapid.Uint64Range(1, m.lastOrder+2).Draw(rt, "order")
				success := rapid.Bool().Draw(rt, "success")
				key := rapid.SampledFrom([]string{"w1", "w2", "w3", fmt.Sprint("u", rapid.Int().Draw(rt, "u"))}).Draw(rt, "key")
				want := m.pay(id, success, key)
				got := te.ApplyPayment(Payment{OrderID: id, Success: success}, []byte(key))
				if got != want {
					rt.Fatalf("pay(%d, %v, %q) = %+v, model says %+v", id, success, key, got, want)
				}
			},
			"advance": func(rt *rapid.T) {
				d := rapid.SampledFrom([]time.Duration{time.Millisecond, 30 * time.Second, time.Minute, 2 * time.Minute, 16 * time.Minute}).Draw(rt, "d")
				m.now = m.now.Add(d)
				m.expire()
				te.advance(d)
			},
			"restart": func(rt *rapid.T) {
				te.restart()
			},
			"": func(rt *rapid.T) {
				for id, want := range m.products {
					got := te.product(id)
					if got.TotalStock != want.total || got.Available != want.available || got.Reserved != want.reserved || got.Sold != want.sold {
						rt.Fatalf("product %d = %+v, model %+v", id, got, *want)
					}
				}
			},
		})
	})
}
