package crash

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"sync"
	"time"
)

// Shares of the load's choices, as probabilities.
const (
	pickPendingOrder = 0.15 // start by paying or failing an older pending order
	pickOpenHold     = 0.10 // start by ordering an older unordered hold
	queueWebhook     = 0.03 // start by paying or failing an order not created yet
	keyedHold        = 0.30 // a new hold carries an Idempotency-Key
	retryKeyedHold   = 0.10 // a keyed 201 is retried at once and must replay
	abandonHold      = 0.10 // a new hold is never ordered
	repostOrder      = 0.10 // an order is posted again and must come back with 200
	leaveOrder       = 0.20 // a new order gets no webhook (for later picking)
	secondWebhook    = 0.15 // an order gets a second webhook, opposite status, new key
	duplicateWebhook = 0.10 // a webhook is delivered twice at the same time
	bigProductShare  = 0.40 // holds on the last (large) product; the rest on small ones
)

// A webhook meant to be queued targets an order id this far past the
// highest acknowledged one: queueAheadMin plus up to queueAheadSpread.
const (
	queueAheadMin    = 20
	queueAheadSpread = 200
)

// downPause is how long a worker waits after a request got no answer (the
// server is probably dead) before trying again.
const downPause = 10 * time.Millisecond

// load drives concurrent clients against one server and records what it
// acknowledged in a ledger.
type load struct {
	c        *client
	l        *ledger
	products []seedProduct // the last one is large, the others small
	tag      string        // unique per run, part of every Idempotency-Key
	markNow  func() mark   // where the log ends now; nil gives zero marks
}

// run starts workers goroutines and returns once ctx is done and all of them
// have returned. Worker i draws from a generator seeded with rngSeed+i.
func (ld *load) run(ctx context.Context, workers int, rngSeed int64) {
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		w := &worker{load: ld, id: i, rng: rand.New(rand.NewSource(rngSeed + int64(i)))}
		wg.Go(func() { w.loop(ctx) })
	}
	wg.Wait()
}

// worker is one sequential client.
type worker struct {
	*load
	id  int
	rng *rand.Rand
}

func (w *worker) loop(ctx context.Context) {
	for seq := 0; ctx.Err() == nil; seq++ {
		r := w.rng.Float64()
		if r < pickPendingOrder {
			if id, ok := w.l.pendingOrder(w.rng); ok {
				w.webhook(id, w.randomWebhookStatus(), w.key("w", seq, "old"))
				continue
			}
		} else if r < pickPendingOrder+pickOpenHold {
			if h, ok := w.l.openHold(w.rng); ok {
				w.order(h)
				continue
			}
		} else if r < pickPendingOrder+pickOpenHold+queueWebhook {
			if id, ok := w.l.claimQueueTarget(w.rng); ok {
				w.webhook(id, w.randomWebhookStatus(), w.key("w", seq, "early"))
				continue
			}
		}
		w.flow(seq)
	}
}

// flow is one shopper: a hold, usually an order, usually a payment.
func (w *worker) flow(seq int) {
	h, ok := w.hold(seq)
	if !ok || w.rng.Float64() < abandonHold {
		return
	}
	w.l.noteOrderAttempt(h.HoldToken)
	o, ok := w.order(h)
	if !ok || w.rng.Float64() < leaveOrder {
		return
	}
	st := w.randomWebhookStatus()
	w.webhook(o.OrderID, st, w.key("w", seq, "a"))
	if w.rng.Float64() < secondWebhook {
		other := webhookSuccess
		if st == webhookSuccess {
			other = webhookFailure
		}
		w.webhook(o.OrderID, other, w.key("w", seq, "b"))
	}
}

func (w *worker) key(kind string, seq int, suffix string) string {
	return fmt.Sprintf("%s-%s-%d-%d-%s", kind, w.tag, w.id, seq, suffix)
}

func (w *worker) randomWebhookStatus() string {
	if w.rng.Intn(2) == 0 {
		return webhookSuccess
	}
	return webhookFailure
}

func (w *worker) mark() mark {
	if w.markNow == nil {
		return mark{}
	}
	return w.markNow()
}

// noAnswer notes a request that got no answer and pauses.
func (w *worker) noAnswer() {
	w.l.count("no answer")
	time.Sleep(downPause)
}

// hold posts a new hold and records an acknowledged one.
func (w *worker) hold(seq int) (holdJSON, bool) {
	p := w.products[len(w.products)-1]
	if w.rng.Float64() >= bigProductShare {
		p = w.products[w.rng.Intn(len(w.products)-1)]
	}
	qty := 1 + w.rng.Int63n(p.MaxPerHold)
	body := fmt.Sprintf(`{"product_id":%d,"qty":%d}`, p.ID, qty)
	key := ""
	if w.rng.Float64() < keyedHold {
		key = w.key("h", seq, "")
	}
	r, err := w.c.do("POST", "/api/holds", body, key)
	if err != nil {
		w.noAnswer()
		return holdJSON{}, false
	}
	at := w.mark()
	switch r.Status {
	case 201:
		var h holdJSON
		if err := json.Unmarshal(r.Body, &h); err != nil || h.ProductID != p.ID || h.Qty != qty || h.HoldToken == "" {
			w.l.problem("POST /api/holds %s answered %v", body, r)
			return holdJSON{}, false
		}
		w.l.count("hold 201")
		w.l.addHold(h, at)
		if key != "" {
			w.l.addKeyed("/api/holds", key, body, r, at)
			if w.rng.Float64() < retryKeyedHold {
				w.checkLiveReplay("/api/holds", key, body, r)
			}
		}
		return h, true
	case 409:
		w.l.count("hold 409")
		if key != "" {
			w.l.addKeyed("/api/holds", key, body, r, at)
		}
	case 503:
		w.l.count("503")
		time.Sleep(downPause)
	default:
		w.l.problem("POST /api/holds %s (key %q) answered %v", body, key, r)
	}
	return holdJSON{}, false
}

// checkLiveReplay resends a keyed request at once and compares the answers.
func (w *worker) checkLiveReplay(path, key, body string, first reply) {
	r, err := w.c.do("POST", path, body, key)
	if err != nil {
		return // the server died in between; the ledger's check covers it
	}
	if r.Status == 503 {
		return
	}
	if r.Status != first.Status || !bytes.Equal(r.Body, first.Body) || !r.Replayed {
		w.l.problem("POST %s %s with Idempotency-Key %q again: got %v (replayed %v), first answer %v",
			path, body, key, r, r.Replayed, first)
	}
}

// order posts an order for h (sometimes twice) and records the answer. The
// caller has noted the attempt in the ledger.
func (w *worker) order(h holdJSON) (orderJSON, bool) {
	body := fmt.Sprintf(`{"hold_token":%q}`, h.HoldToken)
	o, status, ok := w.postOrder(h, body)
	if ok && w.rng.Float64() < repostOrder {
		again, status2, ok2 := w.postOrder(h, body)
		if ok2 && (status2 != 200 || again.OrderID != o.OrderID) {
			w.l.problem("POST /api/orders %s again: %d with order %d, first %d with order %d (want 200, same order)",
				body, status2, again.OrderID, status, o.OrderID)
		}
	}
	return o, ok
}

func (w *worker) postOrder(h holdJSON, body string) (orderJSON, int, bool) {
	r, err := w.c.do("POST", "/api/orders", body, "")
	if err != nil {
		w.noAnswer()
		return orderJSON{}, 0, false
	}
	at := w.mark()
	switch r.Status {
	case 200, 201:
		var o orderJSON
		if err := json.Unmarshal(r.Body, &o); err != nil || o.OrderID <= 0 {
			w.l.problem("POST /api/orders %s answered %v", body, r)
			return orderJSON{}, 0, false
		}
		w.l.count(fmt.Sprintf("order %d", r.Status))
		w.l.addOrder(h.HoldToken, o, at)
		return o, r.Status, true
	case 410:
		w.l.count("order 410")
		if exp, err := time.Parse(time.RFC3339, h.ExpiresAt); err == nil && time.Until(exp) > time.Second {
			w.l.problem("POST /api/orders %s: 410 with %v of the hold left (expires_at %s)", body, time.Until(exp), h.ExpiresAt)
		}
	case 503:
		w.l.count("503")
		time.Sleep(downPause)
	default:
		w.l.problem("POST /api/orders %s for acknowledged hold %+v answered %v", body, h, r)
	}
	return orderJSON{}, 0, false
}

// webhook sends one payment event for an order and records the answer: 200
// for an order that exists, 202 for one not created yet.
func (w *worker) webhook(orderID int64, status, key string) {
	body := fmt.Sprintf(`{"status":%q,"order_id":%d}`, status, orderID)
	if status == webhookFailure {
		body = fmt.Sprintf(`{"status":%q,"order_id":%d,"failure_reason":"insufficient_funds"}`, status, orderID)
	}
	w.l.noteWebhookSent(orderID, status)
	var r reply
	var err error
	if w.rng.Float64() < duplicateWebhook {
		r, err = w.deliverTwice(body, key)
	} else {
		r, err = w.c.do("POST", "/api/payments/webhook", body, key)
	}
	if err != nil {
		w.noAnswer()
		return
	}
	at := w.mark()
	switch r.Status {
	case 200:
		var a webhookJSON
		if err := json.Unmarshal(r.Body, &a); err != nil {
			w.l.problem("POST /api/payments/webhook %s answered %v", body, r)
			return
		}
		w.l.count("webhook 200")
		w.l.addWebhookAnswer(orderID, status, a, at)
		w.l.addKeyed("/api/payments/webhook", key, body, r, at)
	case 503:
		w.l.count("503")
		time.Sleep(downPause)
	case 202:
		var a webhookJSON
		if err := json.Unmarshal(r.Body, &a); err != nil || a.OrderID != orderID || a.Status != "queued" {
			w.l.problem("POST /api/payments/webhook %s answered %v", body, r)
			return
		}
		w.l.count("webhook 202")
		w.l.addQueued(orderID, status, at)
		w.l.addKeyed("/api/payments/webhook", key, body, r, at)
		if w.l.knownOrder(orderID) {
			w.l.problem("POST /api/payments/webhook %s (key %q): 202 queued for acknowledged order %d", body, key, orderID)
		}
	default:
		w.l.problem("POST /api/payments/webhook %s (key %q) answered %v", body, key, r)
	}
}

// deliverTwice sends the same webhook twice at the same time. When both are
// answered with 2xx, the answers must be the same, byte for byte, and
// exactly one must be the original (the other marked Idempotent-Replayed):
// nothing is applied twice. It returns the original answer, or whichever
// arrived, or an error if neither did.
func (w *worker) deliverTwice(body, key string) (reply, error) {
	var r [2]reply
	var errs [2]error
	var wg sync.WaitGroup
	for i := range r {
		wg.Go(func() { r[i], errs[i] = w.c.do("POST", "/api/payments/webhook", body, key) })
	}
	wg.Wait()
	w.l.count("webhook delivered twice")
	if errs[0] != nil {
		return r[1], errs[1]
	}
	if errs[1] != nil || r[0].Status/100 != 2 || r[1].Status/100 != 2 {
		return r[0], nil
	}
	if r[0].Status != r[1].Status || !bytes.Equal(r[0].Body, r[1].Body) || r[0].Replayed == r[1].Replayed {
		w.l.problem("POST /api/payments/webhook %s with Idempotency-Key %q delivered twice at once: %v (replayed %v) and %v (replayed %v)",
			body, key, r[0], r[0].Replayed, r[1], r[1].Replayed)
	}
	if r[0].Replayed {
		return r[1], nil
	}
	return r[0], nil
}
