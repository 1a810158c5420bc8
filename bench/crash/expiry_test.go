package crash

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/flashsale/flashsale/bench/serverproc"
)

// The expiry test's shape.
const (
	expiryHoldTTL = time.Second
	expiryWorkers = 4
	expiryLoad    = 700 * time.Millisecond
	// expiryGrace is how long after the last expires_at the server restarts:
	// more than docs/API.md's 100 ms.
	expiryGrace = 300 * time.Millisecond
)

// TestExpiryAcrossKill9: holds with a one-second TTL are taken (and some
// ordered and paid), every request is answered, then the server is killed
// with SIGKILL and restarted only after every hold's expires_at has passed.
// Right after the restart every unordered hold reads "expired" and the
// stock is exact: reserved_stock is precisely the units of the pending
// orders, sold_stock those of the paid ones, the rest is available.
func TestExpiryAcrossKill9(t *testing.T) {
	bin := serverproc.Build(t)
	rng := rand.New(rand.NewSource(rngSeed(t)))
	dir := t.TempDir()
	flags := append(serverFlags(t), "--hold-ttl", expiryHoldTTL.String())

	s := serverproc.Start(t, bin, dir, flags...)
	l := newLedger()
	c := newClient(s.URL())
	ctx, cancel := context.WithTimeout(context.Background(), expiryLoad)
	(&load{c: c, l: l, products: catalog, tag: "e"}).run(ctx, expiryWorkers, rng.Int63())
	cancel()
	// At least one hold is surely active when the server dies: one on the
	// large product, taken last.
	big := catalog[len(catalog)-1]
	r, err := c.do("POST", "/api/holds", fmt.Sprintf(`{"product_id":%d,"qty":1}`, big.ID), "")
	var h holdJSON
	if err != nil || r.Status != 201 || json.Unmarshal(r.Body, &h) != nil {
		t.Fatalf("POST /api/holds for product %d: %v %v", big.ID, r, err)
	}
	l.addHold(h, mark{})
	c.Close()
	s.Kill9() // no request in flight: the ledger knows every hold and order
	if n := l.counts["no answer"]; n != 0 {
		t.Fatalf("%d requests got no answer from a live server", n)
	}

	var last time.Time
	for _, h := range l.holds {
		if h.expiresAt.After(last) {
			last = h.expiresAt
		}
	}
	time.Sleep(time.Until(last.Add(expiryGrace)))

	s = serverproc.Start(t, bin, dir, flags...)
	c = newClient(s.URL())
	defer c.Close()
	known := verify(t, "restart after every hold expired", c, l, catalog, allSurvive)
	if known.products == nil {
		return
	}
	for _, p := range catalog {
		got := known.products[p.ID]
		if got.ReservedStock != known.reserved[p.ID] || got.SoldStock != known.sold[p.ID] {
			t.Errorf("product %d after restart: reserved %d, sold %d; its pending orders hold %d units, its paid orders %d (every hold has expired)",
				p.ID, got.ReservedStock, got.SoldStock, known.reserved[p.ID], known.sold[p.ID])
		}
	}
	t.Logf("ledger: %s", l.summary())
}

// orderTimeoutTTL is the payment window in TestOrderTimeoutAcrossKill9.
const orderTimeoutTTL = time.Second

// TestOrderTimeoutAcrossKill9: pending orders whose payment window ends
// while the server is down (killed with SIGKILL) are cancelled with
// failure_reason "payment_timeout" right after the restart, and their units
// are available again, on every product.
func TestOrderTimeoutAcrossKill9(t *testing.T) {
	bin := serverproc.Build(t)
	dir := t.TempDir()
	flags := append(serverFlags(t), "--order-ttl", orderTimeoutTTL.String())

	s := serverproc.Start(t, bin, dir, flags...)
	c := newClient(s.URL())
	var orders []orderJSON
	for _, p := range catalog {
		r, err := c.do("POST", "/api/holds", fmt.Sprintf(`{"product_id":%d,"qty":1}`, p.ID), "")
		var h holdJSON
		if err != nil || r.Status != 201 || json.Unmarshal(r.Body, &h) != nil {
			t.Fatalf("POST /api/holds for product %d: %v %v", p.ID, r, err)
		}
		r, err = c.do("POST", "/api/orders", fmt.Sprintf(`{"hold_token":%q}`, h.HoldToken), "")
		var o orderJSON
		if err != nil || r.Status != 201 || json.Unmarshal(r.Body, &o) != nil || o.Status != statusPending {
			t.Fatalf("POST /api/orders for hold %s: %v %v", h.HoldToken, r, err)
		}
		orders = append(orders, o)
	}
	c.Close()
	s.Kill9()
	time.Sleep(orderTimeoutTTL + expiryGrace)

	s = serverproc.Start(t, bin, dir, flags...)
	c = newClient(s.URL())
	defer c.Close()
	products, err := c.getProducts()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range catalog {
		if got := products[p.ID]; got.ReservedStock != 0 || got.AvailableStock != p.TotalStock {
			t.Errorf("product %d right after the restart: %+v; its only order's payment window ended while the server was down, so want reserved 0, available %d",
				p.ID, got, p.TotalStock)
		}
	}
	for _, o := range orders {
		r, err := c.do("GET", fmt.Sprintf("/api/orders/%d", o.OrderID), "", "")
		var got struct {
			Status        string `json:"status"`
			FailureReason string `json:"failure_reason"`
		}
		if err != nil || r.Status != 200 || json.Unmarshal(r.Body, &got) != nil {
			t.Errorf("GET /api/orders/%d: %v %v", o.OrderID, r, err)
			continue
		}
		if got.Status != statusCancelled || got.FailureReason != "payment_timeout" {
			t.Errorf("order %d after its payment window: %s; want cancelled with failure_reason payment_timeout", o.OrderID, r.Body)
		}
	}
}
