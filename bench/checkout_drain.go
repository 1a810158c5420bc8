package bench

import "sync/atomic"

// drainFlowsExtra bounds the purchases made to drain queued early webhooks,
// beyond the ids that separate the largest order from the largest early id;
// drainRejectsMax stops the drain once this many holds found no stock.
const (
	drainFlowsExtra = 1000
	drainRejectsMax = 100
)

// drainEarlyWebhooks makes more purchases, without new early webhooks,
// until every order id that flashbench queued a webhook for exists. Left
// queued, those events would be applied to orders made after the run (by a
// later run or anyone else). It buys the product with the most stock left,
// stops early when that runs out, and returns the purchases it made.
func (c *checkoutWorkload) drainEarlyWebhooks(workers []*worker) int64 {
	targetID := c.ledger.maxQueuedEarlyID()
	if targetID == 0 {
		return 0
	}
	p := c.deepestProduct(workers[0])
	flowsMax := targetID - c.ledger.maxOrderID.Load() + drainFlowsExtra
	var flows atomic.Int64
	var rejects atomic.Int64
	_ = forEachParallel(workers, len(workers), func(w *worker, _ int) error {
		for c.ledger.maxOrderID.Load() < targetID && rejects.Load() < drainRejectsMax && flows.Add(1) <= flowsMax {
			if c.purchase(w, p, false) {
				rejects.Add(1)
			}
		}
		return nil
	})
	return min(flows.Load(), flowsMax)
}

// deepestProduct returns the product of the run with the most stock
// available now (the first one if the server cannot say).
func (c *checkoutWorkload) deepestProduct(w *worker) *Product {
	best, bestAvailable := &c.products[0], int64(-1)
	listed, err := w.listProducts()
	if err != nil {
		return best
	}
	available := make(map[int64]int64, len(listed))
	for _, p := range listed {
		available[p.ID] = p.AvailableStock
	}
	for i := range c.products {
		if n, ok := available[c.products[i].ID]; ok && n > bestAvailable {
			best, bestAvailable = &c.products[i], n
		}
	}
	return best
}
