package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// finish verifies, over HTTP, every hold and order of the run against the
// ledger, then every product's counts, and fills res.Checkout.
func (c *checkoutWorkload) finish(_ context.Context, env *runEnv, res *Result) error {
	workers := env.newControlWorkers(verifyParallelism)
	cr := &CheckoutResult{
		Flows:                c.flows.Load(),
		HoldsGranted:         c.holdsGranted.Load(),
		HoldsRejected:        c.holdsRejected.Load(),
		OrdersCreated:        c.ordersCreated.Load(),
		OrderRetries:         c.orderRetries.Load(),
		PaymentsSuccess:      c.paySuccess.Load(),
		PaymentsFailure:      c.payFailure.Load(),
		DuplicatesSequential: c.dupSeq.Load(),
		DuplicatesConcurrent: c.dupConc.Load(),
		ContraryEvents:       c.contrary.Load(),
		EarlyWebhooks:        c.early.Load(),
	}
	cr.DrainFlows = c.drainEarlyWebhooks(workers)
	cr.EarlyWebhooksLeftQueued = int64(len(c.ledger.early))
	activeUnits, err := c.resolveHeld(workers)
	if err != nil {
		return fmt.Errorf("checkout audit: %w", err)
	}
	paidUnits, pendingUnits, err := c.verifyOrders(workers, cr)
	if err != nil {
		return fmt.Errorf("checkout audit: %w", err)
	}
	if err := c.verifyUnmatchedEvents(workers); err != nil {
		return fmt.Errorf("checkout audit: %w", err)
	}
	for _, before := range c.products {
		after, err := env.control.getProduct(before.ID)
		if err != nil {
			return fmt.Errorf("checkout audit: %w", err)
		}
		checkProductArithmetic(env.violations, "after the load", after)
		live := activeUnits[before.ID] + pendingUnits[before.ID] + paidUnits[before.ID]
		checkUnitsAgainstStock(env.violations, before, after, unitLedger{
			liveUnits:    live,
			unknownUnits: c.ledger.unknownHoldUnits[before.ID],
		})
		if sold := after.SoldStock - before.SoldStock; sold != paidUnits[before.ID] {
			env.violations.addf("product %d: the server sold %d units during the run, but flashbench's paid orders hold %d",
				before.ID, sold, paidUnits[before.ID])
		}
	}
	res.Checkout = cr
	return nil
}

// resolveHeld asks the server about every granted hold flashbench did not
// see become an order. Holds that became orders anyway (their answer was
// lost) join the ledger's orders. It returns the units of holds still active
// per product.
func (c *checkoutWorkload) resolveHeld(workers []*worker) (map[int64]int64, error) {
	l := c.ledger
	l.mu.Lock()
	tokens := make([]string, 0, len(l.held))
	holds := make([]heldHold, 0, len(l.held))
	for t, h := range l.held {
		tokens = append(tokens, t)
		holds = append(holds, h)
	}
	l.mu.Unlock()
	var mu sync.Mutex
	active := make(map[int64]int64)
	err := forEachParallel(workers, len(tokens), func(w *worker, i int) error {
		st, err := w.getHold(tokens[i])
		if err != nil {
			c.env.violations.addf("granted hold of %d x product %d: %v", holds[i].qty, holds[i].productID, err)
			return nil
		}
		switch st.Status {
		case "active":
			mu.Lock()
			active[holds[i].productID] += holds[i].qty
			mu.Unlock()
		case "ordered":
			l.orderCreated(tokens[i], Order{ID: st.OrderID, ProductID: holds[i].productID, Qty: holds[i].qty}, "")
		case "expired":
			l.holdReleased(tokens[i])
		default:
			c.env.violations.addf("hold of %d x product %d has status %q", holds[i].qty, holds[i].productID, st.Status)
		}
		return nil
	})
	return active, err
}

// verifyOrders fetches every order of the ledger and compares its final
// status with the events the server applied. It returns the units of paid
// and of pending orders per product, as the server reports them.
func (c *checkoutWorkload) verifyOrders(workers []*worker, cr *CheckoutResult) (paid, pending map[int64]int64, err error) {
	l := c.ledger
	l.mu.Lock()
	ids := make([]int64, 0, len(l.orders))
	recs := make([]orderRecord, 0, len(l.orders))
	for id, rec := range l.orders {
		ids = append(ids, id)
		recs = append(recs, *rec)
	}
	l.mu.Unlock()
	paid, pending = make(map[int64]int64), make(map[int64]int64)
	var mu sync.Mutex
	err = forEachParallel(workers, len(ids), func(w *worker, i int) error {
		o, found, err := w.getOrder(ids[i])
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if !found {
			c.env.violations.addf("order %d: created, now 404", ids[i])
			return nil
		}
		cr.OrdersVerified++
		c.judgeOrder(o, &recs[i], cr)
		switch o.Status {
		case statusPaid:
			cr.OrdersPaid++
			paid[o.ProductID] += o.Qty
		case statusPending:
			cr.OrdersPending++
			pending[o.ProductID] += o.Qty
		case statusCancelled:
			cr.OrdersCancelled++
		}
		return nil
	})
	return paid, pending, err
}

// judgeOrder compares one order as the server reports it with the ledger.
func (c *checkoutWorkload) judgeOrder(o Order, rec *orderRecord, cr *CheckoutResult) {
	v := c.env.violations
	if o.ProductID != rec.productID || o.Qty != rec.qty {
		v.addf("order %d: product %d qty %d, made from a hold of product %d qty %d", o.ID, o.ProductID, o.Qty, rec.productID, rec.qty)
	}
	if rec.early != "" {
		cr.EarlyWebhooksResolved++
		if rec.createdStatus != "" && rec.createdStatus != rec.early {
			v.addf("order %d: created %q although a queued webhook had made it %q", o.ID, rec.createdStatus, rec.early)
		}
	}
	if len(rec.applied) > 1 {
		cr.DoubledPayments++
		v.addf("order %d: %d payment events applied (%v): a final state changed", o.ID, len(rec.applied), rec.applied)
	}
	if len(rec.applied) >= 1 {
		if want := rec.applied[0]; o.Status != want {
			if want == statusPaid {
				cr.LostPayments++
			}
			v.addf("order %d: status %q, but the server applied a %q event", o.ID, o.Status, want)
		}
		return
	}
	if rec.createdStatus != "" && rec.createdStatus != statusPending && o.Status == rec.createdStatus {
		// Created already final although this run queued nothing for it: a
		// webhook queued before the run (by an earlier one) was applied.
		cr.OrdersFinalAtCreation++
		return
	}
	allowed := append([]string{statusPending}, rec.unknown...)
	if slices.Contains(allowed, o.Status) {
		return
	}
	if o.Status == statusCancelled && o.FailureReason == "payment_timeout" {
		return
	}
	v.addf("order %d: status %q, but no payment event was applied to it", o.ID, o.Status)
}

// verifyUnmatchedEvents checks the events applied or queued for order ids
// that never showed up among flashbench's orders: if such an order exists
// now, it must carry the event's outcome.
func (c *checkoutWorkload) verifyUnmatchedEvents(workers []*worker) error {
	l := c.ledger
	l.mu.Lock()
	type event struct {
		orderID int64
		outcome string
	}
	var events []event
	for id, outcome := range l.early {
		events = append(events, event{id, outcome})
	}
	for id, outcomes := range l.appliedBefore {
		events = append(events, event{id, outcomes[0]})
	}
	l.mu.Unlock()
	return forEachParallel(workers, len(events), func(w *worker, i int) error {
		o, found, err := w.getOrder(events[i].orderID)
		if err != nil {
			return err
		}
		if found && o.Status != events[i].outcome {
			c.env.violations.addf("order %d: status %q, but a %q webhook was accepted for it before it existed",
				o.ID, o.Status, events[i].outcome)
		}
		return nil
	})
}
