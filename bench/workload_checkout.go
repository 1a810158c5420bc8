package bench

import (
	"context"
	"fmt"
	"strconv"
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

// op runs one purchase of a random product.
func (c *checkoutWorkload) op(w *worker) {
	c.purchase(w, &c.products[w.rng.IntN(len(c.products))], true)
}

// purchase runs one hold → order → payment flow for p; withEarly lets it
// also send an early webhook. It reports whether the hold was refused for
// lack of stock.
func (c *checkoutWorkload) purchase(w *worker, p *Product, withEarly bool) (outOfStock bool) {
	c.flows.Add(1)
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

// progress shows how many orders were made.
func (c *checkoutWorkload) progress() string {
	return fmt.Sprintf("orders %d", c.ordersCreated.Load())
}
