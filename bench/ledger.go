package bench

import (
	"sync"
	"sync/atomic"
)

// Order statuses of docs/API.md.
const (
	statusPending   = "pending"
	statusPaid      = "paid"
	statusCancelled = "cancelled"
)

// paymentStatus is the order status a webhook event leads to.
func paymentStatus(success bool) string {
	if success {
		return statusPaid
	}
	return statusCancelled
}

// heldHold is a hold flashbench was granted and has not (knowingly) turned
// into an order.
type heldHold struct {
	productID int64
	qty       int64
}

// orderRecord is what flashbench knows about one of its orders.
type orderRecord struct {
	productID int64
	qty       int64
	// createdStatus is the status in the answer to POST /api/orders ("" if
	// the order was found later through its hold).
	createdStatus string
	// applied lists the outcome of every event the server said it applied:
	// webhooks answered applied:true, and an early webhook answered 202.
	// More than one entry is a doubled payment.
	applied []string
	// early is the outcome of a webhook queued (202) before the order existed;
	// the order must have been created with that status already.
	early string
	// unknown lists outcomes of events whose answer was lost: they may or
	// may not have been applied.
	unknown []string
}

// ledger is flashbench's own account of a checkout run: every hold and order
// it was granted and every payment event the server applied. The end of run
// audit holds the server's answers to it. It is safe for concurrent use.
type ledger struct {
	mu     sync.Mutex
	held   map[string]heldHold
	orders map[int64]*orderRecord
	// early maps an order id that did not exist yet to the outcome of the
	// webhook flashbench sent for it and the server queued (202).
	early map[int64]string
	// appliedBefore and unknownBefore keep event outcomes for order ids not
	// in orders yet (another worker has not recorded its 201 so far); they
	// are merged when it does.
	appliedBefore map[int64][]string
	unknownBefore map[int64][]string
	// unknownHoldUnits counts, per product, units of hold requests that
	// never got an answer.
	unknownHoldUnits map[int64]int64

	maxOrderID  atomic.Int64
	nextEarlyID int64 // guarded by mu
}

func newLedger() *ledger {
	return &ledger{
		held:             make(map[string]heldHold),
		orders:           make(map[int64]*orderRecord),
		early:            make(map[int64]string),
		unknownHoldUnits: make(map[int64]int64),
		appliedBefore:    make(map[int64][]string),
		unknownBefore:    make(map[int64][]string),
	}
}

// holdGranted records a 201 to POST /api/holds.
func (l *ledger) holdGranted(token string, productID, qty int64) {
	l.mu.Lock()
	l.held[token] = heldHold{productID, qty}
	l.mu.Unlock()
}

// holdUnknown records a hold request whose outcome was never learned.
func (l *ledger) holdUnknown(productID, qty int64) {
	l.mu.Lock()
	l.unknownHoldUnits[productID] += qty
	l.mu.Unlock()
}

// holdReleased records a hold the server reported expired (410).
func (l *ledger) holdReleased(token string) {
	l.mu.Lock()
	delete(l.held, token)
	l.mu.Unlock()
}

// orderCreated records an order made from the hold token (removing the
// hold from the held set). An early webhook queued for this order id
// applies to it from its creation.
func (l *ledger) orderCreated(token string, o Order, createdStatus string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.held, token)
	rec, ok := l.orders[o.ID]
	if !ok {
		rec = &orderRecord{productID: o.ProductID, qty: o.Qty}
		l.orders[o.ID] = rec
	}
	if rec.createdStatus == "" {
		rec.createdStatus = createdStatus
	}
	if e, ok := l.early[o.ID]; ok {
		delete(l.early, o.ID)
		rec.early = e
		rec.applied = append(rec.applied, e)
	}
	if a, ok := l.appliedBefore[o.ID]; ok {
		delete(l.appliedBefore, o.ID)
		rec.applied = append(rec.applied, a...)
	}
	if u, ok := l.unknownBefore[o.ID]; ok {
		delete(l.unknownBefore, o.ID)
		rec.unknown = append(rec.unknown, u...)
	}
	for {
		m := l.maxOrderID.Load()
		if o.ID <= m || l.maxOrderID.CompareAndSwap(m, o.ID) {
			break
		}
	}
}

// paymentApplied records a webhook event the server answered applied:true.
func (l *ledger) paymentApplied(orderID int64, outcome string) {
	l.mu.Lock()
	if rec, ok := l.orders[orderID]; ok {
		rec.applied = append(rec.applied, outcome)
	} else {
		l.appliedBefore[orderID] = append(l.appliedBefore[orderID], outcome)
	}
	l.mu.Unlock()
}

// paymentUnknown records a webhook event whose answer was lost.
func (l *ledger) paymentUnknown(orderID int64, outcome string) {
	l.mu.Lock()
	if rec, ok := l.orders[orderID]; ok {
		rec.unknown = append(rec.unknown, outcome)
	} else {
		l.unknownBefore[orderID] = append(l.unknownBefore[orderID], outcome)
	}
	l.mu.Unlock()
}

// reserveEarlyID returns an order id no order has yet and none will get
// before the caller's webhook reaches the server: gap ids above the largest
// seen, where gap exceeds the order creations that can be in flight.
func (l *ledger) reserveEarlyID(gap int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := max(l.nextEarlyID, l.maxOrderID.Load()+gap)
	l.nextEarlyID = id + 1
	return id
}

// earlyQueued records that the server queued (202) an early webhook for
// orderID. If the order was created meanwhile, the event counts as applied
// to it at once.
func (l *ledger) earlyQueued(orderID int64, outcome string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if rec, ok := l.orders[orderID]; ok {
		rec.early = outcome
		rec.applied = append(rec.applied, outcome)
		return
	}
	l.early[orderID] = outcome
}

// outstandingUnits is the units of granted holds without a known order.
func (l *ledger) outstandingUnits() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, h := range l.held {
		n += h.qty
	}
	return n
}

// maxQueuedEarlyID returns the largest order id that has an early webhook
// queued for it and no order in the ledger yet, or 0 if there is none.
func (l *ledger) maxQueuedEarlyID() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var m int64
	for id := range l.early {
		m = max(m, id)
	}
	return m
}
