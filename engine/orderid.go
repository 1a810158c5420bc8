package engine

// OrderIDAheadMax is how far beyond the highest order id handed out a
// webhook's order id may be and still be queued (docs/API.md): a webhook
// for an id further ahead is CodeOrderNotFound, stores nothing and logs
// nothing, so that nobody can fill the queued webhooks with ids of the far
// future. The bound is the engine's own: in cluster mode each partition's
// engine counts the ids of its partition (IDStride, IDResidue), so the
// bound is 1,000,000 beyond that partition's highest id.
const OrderIDAheadMax = 1_000_000

// HighestOrderID is the highest order id this engine has handed out (or
// replayed), 0 before the first order.
func (e *Engine) HighestOrderID() uint64 { return e.lastOrderID.Load() }

// orderIDTooFarAhead reports whether id is more than OrderIDAheadMax beyond
// the highest order id handed out.
func (e *Engine) orderIDTooFarAhead(id uint64) bool {
	last := e.lastOrderID.Load()
	return id > last && id-last > OrderIDAheadMax
}
