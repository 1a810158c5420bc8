package bench

import (
	"bytes"
	"sync"
)

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
	body := webhookBody(nil, o.ID, success, key)

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
	a := deliver(w, key, webhookBody(nil, orderID, success, key))
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
	a := deliver(w, key, webhookBody(nil, id, success, key))
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
