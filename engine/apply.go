package engine

import "fmt"

// apply changes the actor's state by one record. It is the only code that
// does, live and in replay alike, so the two cannot diverge. It reports, for
// a payment record, whether the payment changed its order.
func (a *actor) apply(r *record) (applied bool) {
	switch r.kind {
	case recProductRestocked:
		a.counts.total += r.qty
		a.counts.available += r.qty
	case recHoldCreated:
		a.applyHoldCreated(r)
	case recHoldRejected:
		a.e.holdKeys.remember(r.key, r.atNanos, holdRefusedAnswer(holdFingerprint(a.id, r.qty), r.available))
	case recHoldExpired:
		h := a.mustHold(r)
		h.status = HoldExpired
		a.counts.available += h.qty
		a.counts.reserved -= h.qty
		a.e.stats.HoldsExpired.Add(1)
	case recOrderCreated:
		a.applyOrderCreated(r)
	case recPaymentApplied:
		applied = a.applyPayment(r.orderID, r.success, r.reason, r.atNanos)
		o, _ := a.orders.get(r.orderID)
		reply := PaymentReply{Code: OK, OrderID: r.orderID, Status: o.status, Applied: applied}
		a.e.webhookKeys.remember(r.key, r.atNanos, paymentAnswer(paymentFingerprint(r.orderID, r.success, r.reason), &reply))
		if applied {
			a.e.stats.WebhooksApplied.Add(1)
		} else {
			a.e.stats.WebhooksNotApplied.Add(1)
		}
	case recOrderTimedOut:
		o, ok := a.orders.get(r.orderID)
		if !ok || o.status != OrderPending {
			panic(fmt.Sprintf("engine: order %d timed out while not pending", r.orderID))
		}
		a.cancel(r.orderID, o, FailureReasonPaymentTimeout, r.atNanos)
		a.e.stats.OrdersTimedOut.Add(1)
	default:
		panic(fmt.Sprintf("engine: record kind %d applied to an actor", r.kind))
	}
	a.counts.check(a.id)
	return applied
}

func (a *actor) mustHold(r *record) *holdState {
	if r.holdSeq < a.holds.firstSeq || r.holdSeq >= a.holds.nextSeq() {
		panic(fmt.Sprintf("engine: record kind %d for product %d names hold %d, which is not kept", r.kind, a.id, r.holdSeq))
	}
	h := a.holds.mut(r.holdSeq)
	if h.status != HoldActive {
		panic(fmt.Sprintf("engine: record kind %d for product %d names a hold that is not active", r.kind, a.id))
	}
	return h
}

func (a *actor) applyHoldCreated(r *record) {
	if r.qty < 1 || r.qty > a.counts.available {
		panic(fmt.Sprintf("engine: hold of %d units with %d available on product %d", r.qty, a.counts.available, a.id))
	}
	a.counts.available -= r.qty
	a.counts.reserved += r.qty
	a.holds.forgetBefore(r.atNanos - int64(a.e.cfg.ExpiredHoldRetention))
	a.holds.add(r.holdSeq, holdState{secret: r.secret, qty: r.qty, expiresNanos: r.deadline, status: HoldActive})
	a.deadlines.push(deadline{atNanos: r.deadline, holdSeq: r.holdSeq})
	a.e.stats.HoldsCreated.Add(1)
	if r.key != "" {
		a.e.holdKeys.remember(r.key, r.atNanos, holdCreatedAnswer(a.id, r.holdSeq, r.secret, r.qty, r.deadline))
	}
}

// applyOrderCreated turns an active hold into a pending order and applies
// the webhooks that were queued for the order's id before it existed. Which
// webhooks those are is fixed by the log's order (see orderDir), so replay
// takes the same ones.
func (a *actor) applyOrderCreated(r *record) {
	h := a.mustHold(r)
	h.status = HoldOrdered
	h.orderID = r.orderID
	a.orders.set(r.orderID, orderState{qty: h.qty, amountCents: h.qty * a.priceCents, status: OrderPending,
		holdSeq: r.holdSeq, secret: h.secret, createdNanos: r.atNanos, updatedNanos: r.atNanos, deadlineNanos: r.deadline})
	a.e.noteOrderID(r.orderID)
	if r.deadline != 0 {
		a.deadlines.push(deadline{atNanos: r.deadline, orderID: r.orderID})
	}
	a.e.stats.OrdersCreated.Add(1)
	a.e.stats.OrdersPending.Add(1)
	for _, ev := range a.e.orders.publish(r.orderID, a.id) {
		if ev.deadlineNanos > r.atNanos && a.applyPayment(r.orderID, ev.success, ev.reason, r.atNanos) {
			a.e.stats.WebhooksApplied.Add(1)
		}
	}
}

// applyPayment applies a payment result to a pending order. A final order
// never changes; a success for a cancelled order is money taken for nothing,
// reported for a refund.
func (a *actor) applyPayment(orderID uint64, success bool, reason string, atNanos int64) bool {
	o, ok := a.orders.get(orderID)
	if !ok {
		panic(fmt.Sprintf("engine: payment for order %d unknown to product %d", orderID, a.id))
	}
	if o.status != OrderPending {
		if success && o.status == OrderCancelled {
			a.e.stats.RefundsNeeded.Add(1)
			if !a.e.replaying && a.e.cfg.OnRefundNeeded != nil {
				a.e.cfg.OnRefundNeeded(orderID, a.id)
			}
		}
		return false
	}
	if !success {
		a.cancel(orderID, o, reason, atNanos)
		a.e.stats.OrdersCancelled.Add(1)
		return true
	}
	o.status = OrderPaid
	o.updatedNanos = atNanos
	a.orders.set(orderID, o)
	a.counts.reserved -= o.qty
	a.counts.sold += o.qty
	a.e.stats.OrdersPaid.Add(1)
	a.e.stats.OrdersPending.Add(-1)
	return true
}

// cancel ends a pending order without payment (declined or timed out).
func (a *actor) cancel(orderID uint64, o orderState, reason string, atNanos int64) {
	a.e.stats.OrdersPending.Add(-1)
	o.status = OrderCancelled
	o.failureReason = reason
	o.updatedNanos = atNanos
	a.orders.set(orderID, o)
	a.counts.reserved -= o.qty
	a.counts.available += o.qty
}
