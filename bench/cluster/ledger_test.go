package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// reporter is the part of testing.T that verifyLedger reports through, so
// that a test of the checker can collect what it reports.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
}

// verifyPatience is how long verifyLedger retries a request answered 503.
const verifyPatience = 5 * time.Second

// problemsMax caps the problems a ledger keeps; one is enough to fail.
const problemsMax = 50

// ledger records every acknowledged answer of a load on a cluster: holds,
// orders and the final statuses acknowledged for them, webhooks queued for
// orders not created yet, and keyed answers that must replay byte for byte.
// It is safe for concurrent use.
type ledger struct {
	mu        sync.Mutex
	holds     map[string]holdJSON // by token
	holdList  []string
	orders    map[int64]*ledgerOrder
	orderList []int64
	queued    map[int64]bool // order id → success; a 202 queued it before the order existed
	queueIDs  map[int64]bool // ids a queued webhook was sent for, answered or not
	keyed     []keyedAnswer
	problems  []string
	counts    map[string]int
}

type ledgerOrder struct {
	order orderJSON
	final string // "paid" or "cancelled" once an answer said so
	hooks bool   // a webhook was sent for it, answered or not
}

// keyedAnswer is the first answer to a request under an Idempotency-Key.
type keyedAnswer struct {
	path, key, body string
	first           reply
}

func newLedger() *ledger {
	return &ledger{holds: map[string]holdJSON{}, orders: map[int64]*ledgerOrder{}, queued: map[int64]bool{},
		queueIDs: map[int64]bool{}, counts: map[string]int{}}
}

func (l *ledger) problem(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.problems) < problemsMax {
		l.problems = append(l.problems, fmt.Sprintf(format, args...))
	}
}

func (l *ledger) count(kind string) {
	l.mu.Lock()
	l.counts[kind]++
	l.mu.Unlock()
}

func (l *ledger) addHold(h holdJSON) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, dup := l.holds[h.HoldToken]; dup {
		l.problems = append(l.problems, fmt.Sprintf("hold token %s handed out twice", h.HoldToken))
		return
	}
	l.holds[h.HoldToken] = h
	l.holdList = append(l.holdList, h.HoldToken)
}

// addOrder records an acknowledged order for hold h.
func (l *ledger) addOrder(h holdJSON, o orderJSON, partitions int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if o.HoldToken != h.HoldToken || o.ProductID != h.ProductID || o.Qty != h.Qty || o.OrderID <= 0 {
		l.problems = append(l.problems, fmt.Sprintf("order for hold %+v answered %+v", h, o))
		return
	}
	if o.OrderID%int64(partitions) != o.ProductID%int64(partitions) {
		l.problems = append(l.problems, fmt.Sprintf("order %d of product %d: id not in the product's partition (mod %d)", o.OrderID, o.ProductID, partitions))
	}
	if e, ok := l.orders[o.OrderID]; ok {
		if e.order.HoldToken != o.HoldToken {
			l.problems = append(l.problems, fmt.Sprintf("order id %d given to holds %s and %s", o.OrderID, e.order.HoldToken, o.HoldToken))
		}
		return
	}
	e := &ledgerOrder{order: o}
	if o.Status != "pending" {
		if _, wasQueued := l.queued[o.OrderID]; !wasQueued && !l.queueIDs[o.OrderID] {
			l.problems = append(l.problems, fmt.Sprintf("order %d was created %s without a webhook for it", o.OrderID, o.Status))
		}
		e.final = o.Status
	}
	l.orders[o.OrderID] = e
	l.orderList = append(l.orderList, o.OrderID)
}

// addFinal records an acknowledged final status of an order and flags a
// final state that changed.
func (l *ledger) addFinal(id int64, status string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.orders[id]
	if !ok || status == "pending" {
		return
	}
	if e.final != "" && e.final != status {
		l.problems = append(l.problems, fmt.Sprintf("order %d acknowledged %s and %s: a final state changed", id, e.final, status))
		return
	}
	e.final = status
}

func (l *ledger) addKeyed(path, key, body string, first reply) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keyed = append(l.keyed, keyedAnswer{path: path, key: key, body: body, first: first})
}

// pendingOrder picks an acknowledged order no webhook was sent for, and
// marks it as about to get one.
func (l *ledger) pendingOrder(rng *rand.Rand) (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for try := 0; try < 8 && len(l.orderList) > 0; try++ {
		e := l.orders[l.orderList[rng.Intn(len(l.orderList))]]
		if !e.hooks && e.final == "" {
			e.hooks = true
			return e.order.OrderID, true
		}
	}
	return 0, false
}

// queueTarget picks an order id of product's partition well past the
// highest acknowledged one there, for a webhook that should be queued.
func (l *ledger) queueTarget(rng *rand.Rand, product int64, partitions int) (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := int64(partitions)
	highest := product % p
	for _, id := range l.orderList {
		if id%p == product%p {
			highest = max(highest, id)
		}
	}
	id := highest + p*(20+rng.Int63n(200))
	if l.queueIDs[id] || l.orders[id] != nil {
		return 0, false
	}
	l.queueIDs[id] = true
	return id, true
}

func (l *ledger) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("%d acknowledged holds, %d orders, %d queued webhooks, %d keyed answers; answers %v",
		len(l.holds), len(l.orders), len(l.queued), len(l.keyed), l.counts)
}

// Shares of the load's choices.
const (
	loadKeyedHold    = 0.3  // a hold carries an Idempotency-Key
	loadOrderHold    = 0.8  // an acknowledged hold is ordered
	loadPayOrder     = 0.7  // an acknowledged order gets a webhook at once
	loadOldOrder     = 0.1  // a step pays or fails an older pending order
	loadQueueHook    = 0.02 // a step sends a webhook for an order not created yet
	loadSmallProduct = 0.3  // a hold is on a small product (sold out soon)
)

// unavailablePause is how long a load client waits after a 503 or no
// answer before its next request: shorter than Retry-After, to measure
// failovers closely, long enough not to spin.
const unavailablePause = 50 * time.Millisecond

// load drives concurrent clients through every live node of a cluster and
// records what was acknowledged.
type load struct {
	c     *Cluster
	cl    *client
	l     *ledger
	tag   string       // part of every idempotency key
	alive atomic.Value // []int: the nodes to send to
}

func newLoad(c *Cluster, l *ledger, tag string, timeout time.Duration) *load {
	ld := &load{c: c, cl: newClient(c.t, timeout), l: l, tag: tag}
	ld.alive.Store(c.LiveIDs())
	return ld
}

// setAlive changes the nodes the clients send to.
func (ld *load) setAlive(ids []int) { ld.alive.Store(ids) }

// run starts workers clients and returns when ctx is done and all returned.
func (ld *load) run(ctx context.Context, workers int, seed int64) {
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		w := &loadWorker{load: ld, id: i, rng: rand.New(rand.NewSource(seed + int64(i)))}
		wg.Go(func() { w.loop(ctx) })
	}
	wg.Wait()
}

type loadWorker struct {
	*load
	id  int
	rng *rand.Rand
	seq int
}

func (w *loadWorker) node() string {
	ids := w.alive.Load().([]int)
	return w.c.URL(ids[w.rng.Intn(len(ids))])
}

func (w *loadWorker) key(kind string) string {
	w.seq++
	return fmt.Sprintf("%s-%s-%d-%d", kind, w.tag, w.id, w.seq)
}

func (w *loadWorker) loop(ctx context.Context) {
	for ctx.Err() == nil {
		switch r := w.rng.Float64(); {
		case r < loadOldOrder:
			if id, ok := w.l.pendingOrder(w.rng); ok {
				w.webhook(id, w.rng.Intn(2) == 0)
				continue
			}
		case r < loadOldOrder+loadQueueHook:
			p := catalog[w.rng.Intn(len(catalog))].ID
			if id, ok := w.l.queueTarget(w.rng, p, w.c.Partitions()); ok {
				w.webhook(id, w.rng.Intn(2) == 0)
				continue
			}
		}
		w.flow()
	}
}

// pause waits after an unavailable answer or none.
func (w *loadWorker) pause(what string) {
	w.l.count(what)
	time.Sleep(unavailablePause)
}

// flow is one shopper: a hold, usually an order, usually a payment.
func (w *loadWorker) flow() {
	var small, large []seedProduct
	for _, s := range catalog {
		if s.TotalStock < 1000 {
			small = append(small, s)
		} else {
			large = append(large, s)
		}
	}
	p := large[w.rng.Intn(len(large))]
	if w.rng.Float64() < loadSmallProduct {
		p = small[w.rng.Intn(len(small))]
	}
	qty := 1 + w.rng.Int63n(p.MaxPerHold)
	key := ""
	if w.rng.Float64() < loadKeyedHold {
		key = w.key("h")
	}
	body := fmt.Sprintf(`{"product_id":%d,"qty":%d}`, p.ID, qty)
	h, r, err := w.cl.hold(w.node(), p.ID, qty, key)
	switch {
	case err != nil && r.Status == 0:
		w.pause("no answer")
		return
	case err != nil:
		w.l.problem("POST /api/holds %s answered %v: %v", body, r, err)
		return
	case r.Status == http.StatusCreated:
		if h.ProductID != p.ID || h.Qty != qty || h.HoldToken == "" {
			w.l.problem("POST /api/holds %s answered %v", body, r)
			return
		}
		w.l.count("hold 201")
		w.l.addHold(h)
		if key != "" {
			w.l.addKeyed("/api/holds", key, body, r)
		}
	case r.Status == http.StatusConflict:
		w.l.count("hold 409")
		if key != "" {
			w.l.addKeyed("/api/holds", key, body, r)
		}
		return
	case r.Status == http.StatusServiceUnavailable:
		w.pause("503 " + r.ErrorCode())
		return
	default:
		w.l.problem("POST /api/holds %s (key %q) answered %v", body, key, r)
		return
	}
	if w.rng.Float64() >= loadOrderHold {
		return
	}
	o, ok := w.order(h)
	if !ok || w.rng.Float64() >= loadPayOrder {
		return
	}
	w.webhook(o.OrderID, w.rng.Intn(2) == 0)
}

// order orders an acknowledged hold, retrying after 503s and lost answers
// (a hold makes at most one order, so a retry is safe and must return the
// same order).
func (w *loadWorker) order(h holdJSON) (orderJSON, bool) {
	for attempt := 0; attempt < 20; attempt++ {
		o, r, err := w.cl.order(w.node(), h.HoldToken)
		switch {
		case err != nil && r.Status == 0:
			w.pause("no answer")
			continue
		case err != nil:
			w.l.problem("POST /api/orders for hold %s answered %v: %v", h.HoldToken, r, err)
			return o, false
		case r.Status == http.StatusCreated || r.Status == http.StatusOK:
			w.l.count(fmt.Sprintf("order %d", r.Status))
			w.l.addOrder(h, o, w.c.Partitions())
			return o, true
		case r.Status == http.StatusServiceUnavailable:
			w.pause("503 " + r.ErrorCode())
			continue
		default:
			w.l.problem("POST /api/orders for acknowledged hold %+v answered %v", h, r)
			return o, false
		}
	}
	return orderJSON{}, false
}

// webhook sends one payment event under a new key and records the answer.
func (w *loadWorker) webhook(orderID int64, success bool) {
	body := webhookBody(orderID, success)
	key := w.key("w")
	w.l.mu.Lock()
	if e := w.l.orders[orderID]; e != nil {
		e.hooks = true
	}
	w.l.mu.Unlock()
	r, err := w.cl.Do(w.node(), "POST", "/api/payments/webhook", body, key)
	if err != nil {
		w.pause("no answer")
		return
	}
	outcome := "cancelled"
	if success {
		outcome = "paid"
	}
	switch r.Status {
	case http.StatusOK:
		var a webhookJSON
		if err := json.Unmarshal(r.Body, &a); err != nil || a.OrderID != orderID || a.Applied == nil {
			w.l.problem("POST /api/payments/webhook %s answered %v", body, r)
			return
		}
		if *a.Applied && a.Status != outcome {
			w.l.problem("webhook %s applied, yet the order is %q", body, a.Status)
		}
		w.l.count("webhook 200")
		w.l.addFinal(orderID, a.Status)
		w.l.addKeyed("/api/payments/webhook", key, body, r)
	case http.StatusAccepted:
		var a webhookJSON
		if err := json.Unmarshal(r.Body, &a); err != nil || a.OrderID != orderID || a.Status != "queued" {
			w.l.problem("POST /api/payments/webhook %s answered %v", body, r)
			return
		}
		w.l.count("webhook 202")
		w.l.mu.Lock()
		if w.l.orders[orderID] != nil {
			w.l.problems = append(w.l.problems, fmt.Sprintf("webhook %s: 202 queued for acknowledged order %d", body, orderID))
		}
		w.l.queued[orderID] = success
		w.l.mu.Unlock()
		w.l.addKeyed("/api/payments/webhook", key, body, r)
	case http.StatusServiceUnavailable:
		w.pause("503 " + r.ErrorCode())
	default:
		w.l.problem("POST /api/payments/webhook %s (key %q) answered %v", body, key, r)
	}
}

// verifyLedger checks, through every live node, that everything the ledger
// holds is there: every acknowledged hold and order with its acknowledged
// fields and status, every keyed answer replays byte for byte (each through
// a different node than the one before), and the stock arithmetic holds
// with at least the units the ledger knows reserved and sold. The cluster
// must be idle.
func verifyLedger(t reporter, c *Cluster, l *ledger, seed []seedProduct) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.problems {
		t.Errorf("during the load: %s", p)
	}
	cl := newClient(c.t, requestTimeout)
	live := c.LiveIDs()
	var before map[int64]productJSON
	for _, id := range live {
		ps, err := productsPatiently(cl, c.URL(id))
		if err != nil {
			t.Errorf("node %d: %v", id, err)
			continue
		}
		checkStock(t, fmt.Sprintf("node %d", id), seed, ps)
		if before == nil {
			before = ps
		} else {
			for pid, p := range ps {
				if before[pid] != p {
					t.Errorf("idle cluster: product %d is %+v through node %d, %+v through node %d", pid, p, id, before[pid], live[0])
				}
			}
		}
	}
	reserved, sold := map[int64]int64{}, map[int64]int64{}
	var mu sync.Mutex
	var errs []string
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(errs) < problemsMax {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	// A read answered 503 is retried for a while: docs/API.md allows a partition
	// without a leader to refuse, and under load on a small machine a
	// leader may change without a kill. The refusals are counted for the log.
	var unavailable atomic.Int64
	get := func(id int, path string) (reply, error) {
		return retryUnavailable(verifyPatience, func() (reply, error) {
			r, err := cl.Do(c.URL(id), "GET", path, "", "")
			if err == nil && r.Status == http.StatusServiceUnavailable {
				unavailable.Add(1)
			}
			return r, err
		})
	}
	defer func() {
		if n := unavailable.Load(); n > 0 {
			t.Logf("verification: %d reads were answered 503 and retried", n)
		}
	}()
	// Reads fan out over a few goroutines per node; each check reads
	// through every live node.
	var wg sync.WaitGroup
	work := make(chan func(), 64)
	for range 6 {
		wg.Go(func() {
			for f := range work {
				f()
			}
		})
	}
	orderOfHold := map[string]int64{}
	for _, id := range l.orderList {
		orderOfHold[l.orders[id].order.HoldToken] = id
	}
	for i, token := range l.holdList {
		h := l.holds[token]
		wantOrder := orderOfHold[token]
		countNode := live[i%len(live)]
		work <- func() {
			for _, id := range live {
				r, err := get(id, "/api/holds/"+token)
				var got holdJSON
				if err == nil && r.Status == http.StatusOK {
					err = json.Unmarshal(r.Body, &got)
				}
				switch {
				case err != nil:
					fail("GET /api/holds/%s through node %d: %v", token, id, err)
				case r.Status != http.StatusOK:
					fail("acknowledged hold %+v through node %d: %v", h, id, r)
				case got.ProductID != h.ProductID || got.Qty != h.Qty || got.ExpiresAt != h.ExpiresAt:
					fail("hold %s through node %d is %+v, acknowledged as %+v", token, id, got, h)
				case wantOrder != 0 && (got.Status != "ordered" || got.OrderID != wantOrder):
					fail("hold %s through node %d: %s order %d, but order %d was acknowledged for it", token, id, got.Status, got.OrderID, wantOrder)
				case got.Status != "active" && got.Status != "ordered":
					fail("hold %s through node %d has status %q (holds outlive the test)", token, id, got.Status)
				case id == countNode && got.Status == "active":
					mu.Lock()
					reserved[h.ProductID] += h.Qty
					mu.Unlock()
				}
			}
		}
	}
	for i, oid := range l.orderList {
		e := l.orders[oid]
		queuedSuccess, wasQueued := l.queued[oid]
		countNode := live[i%len(live)]
		work <- func() {
			for _, id := range live {
				r, err := get(id, fmt.Sprintf("/api/orders/%d", oid))
				var got orderJSON
				if err == nil && r.Status == http.StatusOK {
					err = json.Unmarshal(r.Body, &got)
				}
				want := e.order
				switch {
				case err != nil:
					fail("GET /api/orders/%d through node %d: %v", oid, id, err)
				case r.Status != http.StatusOK:
					fail("acknowledged order %+v through node %d: %v", want, id, r)
				case got.ProductID != want.ProductID || got.Qty != want.Qty || got.AmountCents != want.AmountCents || got.HoldToken != want.HoldToken:
					fail("order %d through node %d is %+v, acknowledged as %+v", oid, id, got, want)
				case e.final != "" && got.Status != e.final:
					fail("order %d through node %d is %s, but %s was acknowledged", oid, id, got.Status, e.final)
				case wasQueued && got.Status != map[bool]string{true: "paid", false: "cancelled"}[queuedSuccess]:
					fail("order %d through node %d is %s, but a webhook (success %v) was queued for it before it existed", oid, id, got.Status, queuedSuccess)
				case got.Status != "pending" && !e.hooks && !wasQueued && !l.queueIDs[oid]:
					fail("order %d through node %d is %s, but no webhook was sent for it", oid, id, got.Status)
				case id == countNode && got.Status == "pending":
					mu.Lock()
					reserved[got.ProductID] += got.Qty
					mu.Unlock()
				case id == countNode && got.Status == "paid":
					mu.Lock()
					sold[got.ProductID] += got.Qty
					mu.Unlock()
				}
			}
		}
	}
	close(work)
	wg.Wait()
	for _, e := range errs {
		t.Errorf("%s", e)
	}
	for pid, units := range reserved {
		if units > before[pid].ReservedStock {
			t.Errorf("product %d: acknowledged active holds and pending orders reserve %d units, reserved_stock is %d", pid, units, before[pid].ReservedStock)
		}
	}
	for pid, units := range sold {
		if units > before[pid].SoldStock {
			t.Errorf("product %d: acknowledged paid orders hold %d units, sold_stock is %d", pid, units, before[pid].SoldStock)
		}
	}
	// Replays change nothing, so they run last; each goes to the next node.
	for i, k := range l.keyed {
		id := live[i%len(live)]
		r, err := retryUnavailable(verifyPatience, func() (reply, error) { return cl.Do(c.URL(id), "POST", k.path, k.body, k.key) })
		if err != nil {
			t.Errorf("replay of POST %s %s (key %q) through node %d: %v", k.path, k.body, k.key, id, err)
			continue
		}
		if r.Status != k.first.Status || !bytes.Equal(r.Body, k.first.Body) || !r.Replayed {
			t.Errorf("replay of POST %s %s (key %q) through node %d: %v (replayed %v), want the first answer %v replayed",
				k.path, k.body, k.key, id, r, r.Replayed, k.first)
		}
	}
	after, err := productsPatiently(cl, c.URL(live[0]))
	if err != nil {
		t.Errorf("after the replays: %v", err)
		return
	}
	for pid, b := range before {
		if a := after[pid]; a != b {
			t.Errorf("the replays changed product %d: %+v before, %+v after", pid, b, a)
		}
	}
}
