package crash

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Clock slack of the hold status checks: a hold may still read "active" this
// long after its expires_at (the server and the test share a clock, but the
// machine is noisy), and may read "expired" this long before it.
const (
	activeAfterExpirySlack = 2 * time.Second
	expiredEarlySlack      = 10 * time.Millisecond
)

// transportErrorsMax is how many unanswered requests verify tolerates
// before it gives up on a server that stopped answering, rather than wait
// out one timeout per remaining check.
const transportErrorsMax = 3

// survival says which acknowledged answers must still be there: those whose
// mark it accepts. After kill -9 alone that is all of them.
type survival func(mark) bool

func allSurvive(mark) bool { return true }

func survivesBefore(d damagePoint) survival { return func(m mark) bool { return m.before(d) } }

// reporter is the part of testing.T that verify reports through.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// verifier checks a restarted server against a ledger. The server must be
// idle: no other client may change it during the check.
type verifier struct {
	t        reporter
	c        *client
	l        *ledger
	seed     []seedProduct
	survives survival

	transportErrors int // requests that got no answer; at transportErrorsMax the check gives up

	lostHolds map[string]bool // acknowledged holds the server no longer knows (allowed only after damage)
	reserved  map[int64]int64 // units the ledger knows to be reserved, by product
	sold      map[int64]int64 // units the ledger knows to be sold, by product
}

// knownUnits is what verify saw: the products as read first, and the units
// that the ledger's holds and orders reserve and sell by the server's own
// account of their statuses, by product id. When every request of the load
// was answered, the ledger knows every hold and order, and the two agree
// exactly.
type knownUnits struct {
	products map[int64]productJSON
	reserved map[int64]int64
	sold     map[int64]int64
}

// verify checks every promise of docs/API.md about acknowledged answers that the
// ledger can judge, then the stock arithmetic. Failures are reported with
// t.Errorf, prefixed with when.
func verify(t reporter, when string, c *client, l *ledger, seed []seedProduct, survives survival) knownUnits {
	t.Helper()
	l.mu.Lock() // the load is over; hold the lock for a consistent view
	defer l.mu.Unlock()
	for _, p := range l.problems {
		t.Errorf("%s: during the load: %s", when, p)
	}
	l.problems = nil
	v := &verifier{t: t, c: c, l: l, seed: seed, survives: survives,
		lostHolds: map[string]bool{}, reserved: map[int64]int64{}, sold: map[int64]int64{}}
	// Products first: a hold or order seen live later was live then too.
	before, err := c.getProducts()
	if err != nil {
		t.Errorf("%s: %v", when, err)
		return knownUnits{}
	}
	known := knownUnits{products: before, reserved: v.reserved, sold: v.sold}
	v.checkStock(when, "before the replays", before)
	v.checkHolds(when)
	v.checkOrders(when)
	for p, units := range v.reserved {
		if units > before[p].ReservedStock {
			t.Errorf("%s: product %d: acknowledged active holds and pending orders reserve %d units, reserved_stock is %d",
				when, p, units, before[p].ReservedStock)
		}
	}
	for p, units := range v.sold {
		if units > before[p].SoldStock {
			t.Errorf("%s: product %d: acknowledged paid orders hold %d units, sold_stock is %d", when, p, units, before[p].SoldStock)
		}
	}
	v.checkReplays(when)
	after, err := c.getProducts()
	if err != nil {
		t.Errorf("%s: %v", when, err)
		return known
	}
	v.checkStock(when, "after the replays", after)
	for id, b := range before {
		if a := after[id]; a.SoldStock != b.SoldStock || a.ReservedStock > b.ReservedStock {
			t.Errorf("%s: idempotent replays changed product %d: %+v before, %+v after", when, id, b, a)
		}
	}
	return known
}

// checkStock checks the stock arithmetic of every seeded product.
func (v *verifier) checkStock(when, what string, products map[int64]productJSON) {
	for _, s := range v.seed {
		p, ok := products[s.ID]
		switch {
		case !ok:
			v.t.Errorf("%s: %s: seeded product %d is missing", when, what, s.ID)
		case p.TotalStock != s.TotalStock:
			v.t.Errorf("%s: %s: product %d: total_stock %d, seeded %d", when, what, s.ID, p.TotalStock, s.TotalStock)
		case p.AvailableStock+p.ReservedStock+p.SoldStock != p.TotalStock:
			v.t.Errorf("%s: %s: product %d: available %d + reserved %d + sold %d != total %d",
				when, what, s.ID, p.AvailableStock, p.ReservedStock, p.SoldStock, p.TotalStock)
		case p.AvailableStock < 0 || p.ReservedStock < 0 || p.SoldStock < 0 || p.ReservedStock+p.SoldStock > p.TotalStock:
			v.t.Errorf("%s: %s: product %d oversold or negative: %+v", when, what, s.ID, p)
		}
	}
	if len(products) != len(v.seed) {
		v.t.Errorf("%s: %s: %d products, seeded %d", when, what, len(products), len(v.seed))
	}
}

// noAnswer reports a request that got no answer.
func (v *verifier) noAnswer(when, what string, err error) {
	v.transportErrors++
	v.t.Errorf("%s: %s: no answer: %v", when, what, err)
	if v.transportErrors == transportErrorsMax {
		v.t.Errorf("%s: the server stopped answering; the rest of the check is skipped", when)
	}
}

func (v *verifier) gaveUp() bool { return v.transportErrors >= transportErrorsMax }

// get fetches path into out; it returns the status, 0 after a failure it reported.
func (v *verifier) get(when, path string, out any) int {
	r, err := v.c.do("GET", path, "", "")
	if err != nil {
		v.noAnswer(when, "GET "+path, err)
		return 0
	}
	if r.Status == 200 {
		if err := json.Unmarshal(r.Body, out); err != nil {
			v.t.Errorf("%s: GET %s: %v: %s", when, path, err, r.Body)
			return 0
		}
	} else if r.Status != 404 {
		v.t.Errorf("%s: GET %s: %v", when, path, r)
		return 0
	}
	return r.Status
}

// checkHolds: every acknowledged hold exists with its product, quantity and
// expiry, and a status its history allows.
func (v *verifier) checkHolds(when string) {
	now := time.Now()
	for _, token := range v.l.holdList {
		if v.gaveUp() {
			return
		}
		h := v.l.holds[token]
		var got holdJSON
		switch v.get(when, "/api/holds/"+token, &got) {
		case 0:
			continue
		case 404:
			v.lostHolds[token] = true
			if v.survives(h.at) {
				v.t.Errorf("%s: acknowledged hold %+v is gone (404)", when, h.hold)
			}
			continue
		}
		if got.ProductID != h.hold.ProductID || got.Qty != h.hold.Qty || got.ExpiresAt != h.hold.ExpiresAt {
			v.t.Errorf("%s: hold %s is %+v, acknowledged as %+v", when, token, got, h.hold)
		}
		orderAcked := h.orderID != 0 && v.survives(v.l.orders[h.orderID].createdAt)
		switch got.Status {
		case "ordered":
			if !h.orderAttempted {
				v.t.Errorf("%s: hold %s is ordered (order %d), but no order was ever requested for it", when, token, got.OrderID)
			} else if h.orderID != 0 && got.OrderID != h.orderID {
				v.t.Errorf("%s: hold %s points to order %d, its acknowledged order is %d", when, token, got.OrderID, h.orderID)
			}
		case "active", "expired":
			if orderAcked {
				v.t.Errorf("%s: hold %s is %s, but order %d was acknowledged for it", when, token, got.Status, h.orderID)
			}
			if got.Status == "active" && now.After(h.expiresAt.Add(activeAfterExpirySlack)) {
				v.t.Errorf("%s: hold %s still active at %s, expires_at %s", when, token, now.UTC().Format(time.RFC3339Nano), h.hold.ExpiresAt)
			}
			if got.Status == "expired" && now.Before(h.expiresAt.Add(-expiredEarlySlack)) {
				v.t.Errorf("%s: hold %s expired at %s, before its expires_at %s", when, token, now.UTC().Format(time.RFC3339Nano), h.hold.ExpiresAt)
			}
			if got.Status == "active" {
				v.reserved[h.hold.ProductID] += h.hold.Qty
			}
		default:
			v.t.Errorf("%s: hold %s has status %q", when, token, got.Status)
		}
	}
}

// checkOrders: every acknowledged order exists as created, with at least its
// acknowledged status, and final only through a webhook sent for it.
func (v *verifier) checkOrders(when string) {
	for _, id := range v.l.orderList {
		if v.gaveUp() {
			return
		}
		e := v.l.orders[id]
		var got orderJSON
		switch v.get(when, fmt.Sprintf("/api/orders/%d", id), &got) {
		case 0:
			continue
		case 404:
			if v.survives(e.createdAt) {
				v.t.Errorf("%s: acknowledged order %+v is gone (404)", when, e.order)
			}
			continue
		}
		want := e.order
		if got.OrderID != id || got.ProductID != want.ProductID || got.Qty != want.Qty ||
			got.AmountCents != want.AmountCents || got.HoldToken != want.HoldToken {
			v.t.Errorf("%s: order %d is %+v, acknowledged as %+v", when, id, got, want)
			continue
		}
		if v.lostHolds[want.HoldToken] {
			v.t.Errorf("%s: order %d exists, but its hold %s is gone", when, id, want.HoldToken)
		}
		required := ""
		for _, a := range e.acks {
			if a.status != statusPending && v.survives(a.at) {
				required = a.status
			}
		}
		switch {
		case got.Status != statusPending && got.Status != statusPaid && got.Status != statusCancelled:
			v.t.Errorf("%s: order %d has status %q", when, id, got.Status)
		case required != "" && got.Status != required:
			v.t.Errorf("%s: order %d is %s, but %s was acknowledged", when, id, got.Status, required)
		case got.Status == statusPaid && !v.l.sent[id][webhookSuccess]:
			v.t.Errorf("%s: order %d is paid, but no success webhook was sent for it", when, id)
		case got.Status == statusCancelled && !v.l.sent[id][webhookFailure]:
			v.t.Errorf("%s: order %d is cancelled, but no failure webhook was sent for it (--order-ttl is off)", when, id)
		}
		if q, ok := v.l.queued[id]; ok && v.survives(q.at) && got.Status != webhookOutcome(q.webhookStatus) {
			v.t.Errorf("%s: order %d is %s, but a %s webhook for it was queued (202) before it was created", when, id, got.Status, q.webhookStatus)
		}
		switch got.Status {
		case statusPending:
			v.reserved[got.ProductID] += got.Qty
		case statusPaid:
			v.sold[got.ProductID] += got.Qty
		}
	}
}

// checkReplays: every keyed answer that must have survived comes back byte
// for byte, marked as a replay. Answers that may be lost are not resent:
// resending would apply them afresh.
func (v *verifier) checkReplays(when string) {
	for _, k := range v.l.keyed {
		if v.gaveUp() {
			return
		}
		if !v.survives(k.at) {
			continue
		}
		r, err := v.c.do("POST", k.path, k.body, k.key)
		if err != nil {
			v.noAnswer(when, fmt.Sprintf("replay of POST %s %s (key %q)", k.path, k.body, k.key), err)
			continue
		}
		if r.Status != k.first.Status || !bytes.Equal(r.Body, k.first.Body) || !r.Replayed {
			v.t.Errorf("%s: POST %s %s with Idempotency-Key %q: got %v (Idempotent-Replayed: %v), want the first answer %v replayed",
				when, k.path, k.body, k.key, r, r.Replayed, k.first)
		}
	}
}
