package bench

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Shape of a checkout flow. Each share is the probability that one flow
// includes that deliberate twist.
const (
	checkoutQtyMax        = 2 // units per hold: 1..min(this, max_per_hold)
	checkoutStockCreated  = 1_000_000
	orderRetryShare       = 0.05 // post the hold token a second time
	earlyWebhookShare     = 0.03 // send a webhook for an order id not created yet
	duplicateSeqShare     = 0.15 // deliver the same webhook twice, one after the other
	duplicateConcShare    = 0.10 // deliver the same webhook several times at once
	contraryEventShare    = 0.05 // after the order is final, send the opposite event
	concurrentDeliveries  = 3
	requestAttemptsMax    = 4
	retryBackoffStepDelay = 5 * time.Millisecond
)

var (
	holdsPath   = []byte("/api/holds")
	ordersPath  = []byte("/api/orders")
	webhookPath = []byte("/api/payments/webhook")
)

// checkoutWorkload runs whole purchases: hold → order → payment webhook, with
// a mix of successful and failed payments, duplicate deliveries (sequential
// and concurrent), contrary events and webhooks that overtake their order.
// It keeps a ledger of everything the server granted and, at the end,
// verifies every order's final status and every product's counts.
type checkoutWorkload struct {
	cfg      Config
	env      *runEnv
	products []Product
	ledger   *ledger
	earlyGap int64

	flows, holdsGranted, holdsRejected, ordersCreated, orderRetries atomic.Int64
	paySuccess, payFailure, dupSeq, dupConc, contrary, early        atomic.Int64
}

func newCheckoutWorkload(cfg Config) *checkoutWorkload {
	return &checkoutWorkload{cfg: cfg, ledger: newLedger(), earlyGap: int64(2*cfg.Conns + 64)}
}

// setup picks the products to buy: --product, a product created through the
// admin API, or the whole catalogue.
func (c *checkoutWorkload) setup(_ context.Context, env *runEnv) error {
	c.env = env
	switch {
	case c.cfg.ProductID > 0:
		p, err := env.control.getProduct(c.cfg.ProductID)
		if err != nil {
			return fmt.Errorf("checkout: %w", err)
		}
		c.products = []Product{p}
	case c.cfg.AdminToken != "":
		p, err := env.control.createProduct("flashbench checkout "+env.runID, 1999, checkoutStockCreated, 5)
		if err != nil {
			return fmt.Errorf("checkout: %w", err)
		}
		c.products = []Product{p}
	default:
		ps, err := env.control.listProducts()
		if err != nil {
			return fmt.Errorf("checkout: %w", err)
		}
		c.products = ps
	}
	if len(c.products) == 0 {
		return fmt.Errorf("checkout: no products to buy")
	}
	return nil
}

// appendKey appends an idempotency key unique to this run to dst.
func appendKey(dst []byte, runID string, kind byte, a, b int64) []byte {
	dst = append(dst, "fb-"...)
	dst = append(dst, runID...)
	dst = append(dst, '-', kind, '-')
	dst = strconv.AppendInt(dst, a, 10)
	dst = append(dst, '-')
	return strconv.AppendInt(dst, b, 10)
}

// retryable reports an answer after which the same request may be sent
// again: no answer at all, or 503.
func retryable(r *reply) bool { return r.status == 0 || r.status == 503 }

func backoff(attempt int) { time.Sleep(time.Duration(attempt) * retryBackoffStepDelay) }

// op runs one purchase.
func (c *checkoutWorkload) op(w *worker) { c.purchase(w, true) }

// purchase runs one hold → order → payment flow; withEarly lets it also
// send an early webhook. It reports whether the hold was refused for lack
// of stock.
func (c *checkoutWorkload) purchase(w *worker, withEarly bool) (outOfStock bool) {
	c.flows.Add(1)
	p := &c.products[w.rng.IntN(len(c.products))]
	qty := 1 + w.rng.Int64N(max(1, min(p.MaxPerHold, checkoutQtyMax)))
	token, ok, outOfStock := c.hold(w, p.ID, qty)
	if !ok {
		return outOfStock
	}
	o, ok := c.order(w, token, p.ID, qty)
	if !ok {
		return false
	}
	if withEarly && w.rng.Float64() < earlyWebhookShare {
		c.earlyWebhook(w)
	}
	c.pay(w, o)
	return false
}

// hold asks for qty units of productID under an idempotency key, retrying
// with the same key when the answer is lost.
func (c *checkoutWorkload) hold(w *worker, productID, qty int64) (token string, ok, outOfStock bool) {
	w.seq++
	w.keyBuf = appendKey(w.keyBuf[:0], c.env.runID, 'h', int64(w.id), w.seq)
	body := w.holdBody(productID, qty)
	noAnswer := false
	for attempt := 0; attempt < requestAttemptsMax; attempt++ {
		if attempt > 0 {
			backoff(attempt)
		}
		r := w.call(EndpointHoldCreate, methodPost, holdsPath, body, requestOptions{idempotencyKey: w.keyBuf})
		switch {
		case r.status == 201 && r.json != nil:
			token = string(r.json.GetStringBytes("hold_token"))
			if token == "" || r.json.GetInt64("product_id") != productID || r.json.GetInt64("qty") != qty {
				c.env.violations.addf("hold for %d x product %d answered %s", qty, productID, r.describe())
				return "", false, false
			}
			c.ledger.holdGranted(token, productID, qty)
			c.holdsGranted.Add(1)
			return token, true, false
		case r.status == 409:
			c.holdsRejected.Add(1)
			return "", false, true
		case retryable(&r):
			noAnswer = noAnswer || r.status == 0
		default:
			return "", false, false
		}
	}
	if noAnswer {
		c.ledger.holdUnknown(productID, qty)
	}
	return "", false, false
}

// order turns the hold into an order, sometimes posting the token twice on
// purpose to check that a hold makes at most one order.
func (c *checkoutWorkload) order(w *worker, token string, productID, qty int64) (Order, bool) {
	body := w.orderBody(token)
	for attempt := 0; attempt < requestAttemptsMax; attempt++ {
		if attempt > 0 {
			backoff(attempt)
		}
		r := w.call(EndpointOrderCreate, methodPost, ordersPath, body, requestOptions{})
		switch {
		case (r.status == 201 || r.status == 200) && r.json != nil:
			o, err := orderFromJSON(r.json)
			if err != nil || o.ProductID != productID || o.Qty != qty {
				c.env.violations.addf("order for a hold of %d x product %d answered %s", qty, productID, r.describe())
				return o, false
			}
			if r.status == 200 && attempt == 0 {
				c.env.violations.addf("order %d: the first POST of its hold answered 200, not 201", o.ID)
			}
			c.ledger.orderCreated(token, o, o.Status)
			c.ordersCreated.Add(1)
			if w.rng.Float64() < orderRetryShare {
				c.repostOrder(w, token, o.ID)
			}
			return o, true
		case r.status == 410:
			c.ledger.holdReleased(token)
			return Order{}, false
		case r.status == 404:
			c.env.violations.addf("POST /api/orders for a granted hold answered 404 %s", r.body)
			return Order{}, false
		case retryable(&r):
		default:
			return Order{}, false
		}
	}
	return Order{}, false
}

// repostOrder posts a hold token that already made order orderID: the
// answer must be 200 with that same order.
func (c *checkoutWorkload) repostOrder(w *worker, token string, orderID int64) {
	c.orderRetries.Add(1)
	r := w.call(EndpointOrderCreate, methodPost, ordersPath, w.orderBody(token), requestOptions{})
	if retryable(&r) {
		return
	}
	if r.status != 200 || r.json == nil || r.json.GetInt64("order_id") != orderID {
		c.env.violations.addf("second POST of the hold of order %d answered %s (want 200 with the same order)", orderID, r.describe())
	}
}

// webhookAnswer is a webhook reply copied out of the worker's buffers.
type webhookAnswer struct {
	answered    bool // got an answer other than 503
	status      int
	body        []byte
	replayed    bool
	applied     bool
	orderStatus string
}

func copyWebhookAnswer(r *reply) webhookAnswer {
	a := webhookAnswer{answered: !retryable(r), status: r.status, body: bytes.Clone(r.body), replayed: r.replayed}
	if r.json != nil {
		a.applied = r.json.GetBool("applied")
		a.orderStatus = string(r.json.GetStringBytes("status"))
	}
	return a
}

// deliver sends one webhook event, retrying with the same key while the
// answer is lost or 503.
func deliver(w *worker, key, body []byte) webhookAnswer {
	var a webhookAnswer
	for attempt := 0; attempt < requestAttemptsMax; attempt++ {
		if attempt > 0 {
			backoff(attempt)
		}
		r := w.call(EndpointWebhook, methodPost, webhookPath, body, requestOptions{idempotencyKey: key, sign: true})
		a = copyWebhookAnswer(&r)
		if a.answered {
			return a
		}
	}
	return a
}

// pay sends the payment provider's webhook for o, success or failure, with
// the flow's deliberate duplicates.
func (c *checkoutWorkload) pay(w *worker, o Order) {
	success := w.rng.Float64() < c.cfg.SuccessShare
	outcome := paymentStatus(success)
	if success {
		c.paySuccess.Add(1)
	} else {
		c.payFailure.Add(1)
	}
	w.seq++
	key := appendKey(nil, c.env.runID, 'w', o.ID, w.seq)
	body := webhookBody(nil, o.ID, success)

	var first webhookAnswer
	dice := w.rng.Float64()
	if dice < duplicateConcShare {
		c.dupConc.Add(1)
		first = c.deliverConcurrently(w, o.ID, key, body)
	} else {
		first = deliver(w, key, body)
	}
	if !first.answered {
		c.ledger.paymentUnknown(o.ID, outcome)
		return
	}
	if !c.checkPaymentAnswer(o.ID, outcome, first) {
		return
	}
	if dice >= duplicateConcShare && dice < duplicateConcShare+duplicateSeqShare {
		c.dupSeq.Add(1)
		again := deliver(w, key, body)
		if again.answered && (!bytes.Equal(again.body, first.body) || !again.replayed) {
			c.env.violations.addf("order %d: a repeated webhook delivery answered %d %q (replayed=%v), first answer was %q",
				o.ID, again.status, again.body, again.replayed, first.body)
		}
	}
	if w.rng.Float64() < contraryEventShare {
		c.sendContrary(w, o.ID, !success)
	}
}

// checkPaymentAnswer checks the first answer to a webhook for an existing
// order, records an applied event in the ledger, and reports whether the
// answer was a 200.
func (c *checkoutWorkload) checkPaymentAnswer(orderID int64, outcome string, a webhookAnswer) bool {
	if a.status != 200 {
		c.env.violations.addf("webhook for existing order %d answered %d %q", orderID, a.status, a.body)
		return false
	}
	if a.applied {
		c.ledger.paymentApplied(orderID, outcome)
		if a.orderStatus != outcome {
			c.env.violations.addf("order %d: webhook %s applied but the order is %q", orderID, outcome, a.orderStatus)
		}
	} else if a.orderStatus != statusPaid && a.orderStatus != statusCancelled {
		c.env.violations.addf("order %d: webhook not applied while the order is %q, not final", orderID, a.orderStatus)
	}
	return true
}

// deliverConcurrently sends the same event several times at once. All 200
// answers must be byte-identical and exactly one may be the original (no
// Idempotent-Replayed header). It returns one of the answers.
func (c *checkoutWorkload) deliverConcurrently(w *worker, orderID int64, key, body []byte) webhookAnswer {
	answers := make([]webhookAnswer, concurrentDeliveries)
	var wg sync.WaitGroup
	for i := range answers {
		sib := w.sibling(i) // created here: sibling is not safe for concurrent use
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := sib.call(EndpointWebhook, methodPost, webhookPath, body, requestOptions{idempotencyKey: key, sign: true})
			answers[i] = copyWebhookAnswer(&r)
		}()
	}
	wg.Wait()
	var ok []webhookAnswer
	for _, a := range answers {
		if a.answered && a.status == 200 {
			ok = append(ok, a)
		}
	}
	if len(ok) == 0 {
		return deliver(w, key, body)
	}
	originals := 0
	for _, a := range ok {
		if !bytes.Equal(a.body, ok[0].body) {
			c.env.violations.addf("order %d: concurrent deliveries of one webhook answered differently: %q vs %q", orderID, ok[0].body, a.body)
		}
		if !a.replayed {
			originals++
		}
	}
	if originals > 1 {
		c.env.violations.addf("order %d: %d concurrent deliveries of one webhook were each processed as new", orderID, originals)
	}
	if originals == 0 && len(ok) == len(answers) {
		c.env.violations.addf("order %d: all %d concurrent deliveries of a new webhook claimed to be replays", orderID, len(ok))
	}
	return ok[0]
}

// sendContrary sends, under a new key, the opposite event for an order that
// is already final: it must not be applied.
func (c *checkoutWorkload) sendContrary(w *worker, orderID int64, success bool) {
	c.contrary.Add(1)
	w.seq++
	key := appendKey(nil, c.env.runID, 'c', orderID, w.seq)
	a := deliver(w, key, webhookBody(nil, orderID, success))
	if !a.answered {
		c.ledger.paymentUnknown(orderID, paymentStatus(success))
		return
	}
	c.checkPaymentAnswer(orderID, paymentStatus(success), a)
}

// earlyWebhook sends a webhook for an order id beyond any that can exist
// yet: the server must queue it (202) and apply it when that order is made.
func (c *checkoutWorkload) earlyWebhook(w *worker) {
	id := c.ledger.reserveEarlyID(c.earlyGap)
	success := w.rng.Float64() < c.cfg.SuccessShare
	outcome := paymentStatus(success)
	key := appendKey(nil, c.env.runID, 'e', id, 0)
	a := deliver(w, key, webhookBody(nil, id, success))
	switch {
	case !a.answered:
		c.ledger.paymentUnknown(id, outcome)
	case a.status == 202:
		c.early.Add(1)
		if a.orderStatus != "queued" {
			c.env.violations.addf("early webhook for order %d answered 202 %q, want status queued", id, a.body)
		}
		c.ledger.earlyQueued(id, outcome)
	case a.status == 200:
		// The order existed after all (ids are not dense); an ordinary event.
		if a.applied {
			c.ledger.paymentApplied(id, outcome)
		}
	case a.status == 429:
		// Too many queued webhooks: allowed by the contract.
	default:
		c.env.violations.addf("early webhook for order %d answered %d %q", id, a.status, a.body)
	}
}

// progress shows how many orders were made.
func (c *checkoutWorkload) progress() string {
	return fmt.Sprintf("orders %d", c.ordersCreated.Load())
}
