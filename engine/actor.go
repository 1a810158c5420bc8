package engine

import (
	crand "crypto/rand"
	"math"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"time"
)

// actor owns one product. Only its goroutine touches its state (before Start,
// the replaying goroutine does); other goroutines read the published counts.
type actor struct {
	e          *Engine
	id         uint64
	name       string
	priceCents int64
	maxPerHold int64

	inbox   chan *command
	quit    chan struct{}
	closed  atomic.Bool   // set when the actor stops reading inbox
	senders atomic.Int64  // calls between their closed check and their send
	wakeCh  chan struct{} // capacity 1: nudges an idle actor to look at pauseReq

	pauseReq atomic.Pointer[pauseRequest] // set by Engine.Pause
	free     chan *batch                  // batches not in flight; the actor waits here when all are

	// state, owned by the actor goroutine
	counts    counts
	holds     holdLog
	orders    orderTable
	deadlines deadlineHeap
	rng       *rand.ChaCha8 // a CSPRNG: hold secrets must be unguessable

	published countsPub
}

// batchesInFlightMax bounds the batches one actor has handed to the journal
// and not yet seen acknowledged.
const batchesInFlightMax = 16

func newActor(e *Engine, r *record) *actor {
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		panic("engine: no system randomness: " + err.Error())
	}
	a := &actor{
		e:          e,
		id:         r.product,
		name:       r.name,
		priceCents: r.priceCents,
		maxPerHold: r.maxPerHold,
		inbox:      make(chan *command, e.cfg.InboxCap),
		quit:       make(chan struct{}),
		wakeCh:     make(chan struct{}, 1),
		free:       make(chan *batch, batchesInFlightMax),
		counts:     counts{total: r.qty, available: r.qty},
		holds:      holdLog{firstSeq: 1},
		orders:     newOrderTable(),
		rng:        rand.NewChaCha8(seed),
	}
	for i := 0; i < batchesInFlightMax; i++ {
		b := &batch{a: a}
		b.onDurable = b.durable
		a.free <- b
	}
	a.published.store(a.counts, a.releaseDueNanos())
	return a
}

// view is the product as clients see it, from the published (durable) counts.
func (a *actor) view() Product {
	c, _ := a.published.load()
	return Product{ID: a.id, Name: a.name, PriceCents: a.priceCents, MaxPerHold: a.maxPerHold,
		TotalStock: c.total, Available: c.available, Reserved: c.reserved, Sold: c.sold}
}

// call hands c to the actor and waits for its answer. A full inbox is
// answered at once with CodeOverloaded rather than queueing without bound; a
// stopped actor's with CodeShuttingDown. senders brackets the send, so that
// the actor's last drain (see drainOnQuit) sees every command that got in.
func (a *actor) call(c *command) {
	a.senders.Add(1)
	if a.closed.Load() {
		a.senders.Add(-1)
		c.code = CodeShuttingDown
		return
	}
	select {
	case a.inbox <- c:
		a.senders.Add(-1)
	default:
		a.senders.Add(-1)
		c.code = CodeOverloaded
		return
	}
	<-c.done
}

// run is the actor's loop: take what is waiting, apply it, hand the records to
// the journal as one batch, and go on without waiting for the fsync.
func (a *actor) run() {
	defer a.e.actorsWG.Done()
	timer := a.e.clock.NewTimer(idleWait)
	defer timer.Stop()
	// The deadline the timer is set for (-1: idle). Deadlines restored by
	// replay are armed before the first command arrives.
	timerAtNanos := a.armTimer(timer, -1)
	for {
		if r := a.pauseReq.Load(); r != nil {
			a.pauseReq.Store(nil)
			close(r.paused)
			<-r.resume
		}
		// Under load the inbox is rarely empty: a plain receive is much
		// cheaper than the three-way select below.
		select {
		case c := <-a.inbox:
			a.step(c)
		default:
			// Let the callers just answered resubmit before parking: the
			// next batch is bigger and the actor sleeps less often.
			runtime.Gosched()
			select {
			case c := <-a.inbox:
				a.step(c)
				timerAtNanos = a.armTimer(timer, timerAtNanos)
				continue
			default:
			}
			select {
			case c := <-a.inbox:
				a.step(c)
			case <-timer.C():
				timerAtNanos = -1
				a.step(nil)
			case <-a.wakeCh:
			case <-a.quit:
				a.drainOnQuit()
				return
			}
		}
		timerAtNanos = a.armTimer(timer, timerAtNanos)
	}
}

// wake makes the actor go round its loop once even if nothing is queued.
func (a *actor) wake() {
	select {
	case a.wakeCh <- struct{}{}:
	default:
	}
}

// armTimer sets timer for the earliest deadline if that changed, and
// returns the deadline it is now set for (-1 when idle).
func (a *actor) armTimer(timer Timer, armedNanos int64) int64 {
	next := int64(-1)
	if a.deadlines.len() > 0 {
		next = a.deadlines.min().atNanos
	}
	if next == armedNanos {
		return armedNanos
	}
	if next < 0 {
		timer.Reset(idleWait)
		return -1
	}
	timer.Reset(max(0, time.Duration(next-a.e.clock.Now().UnixNano())))
	return next
}

// drainOnQuit refuses what is still queued, including what callers that
// got past the closed check are about to send, and waits until every batch
// in flight is acknowledged, so that Stop returns with all answers sent.
func (a *actor) drainOnQuit() {
	a.closed.Store(true)
	for a.senders.Load() != 0 {
		runtime.Gosched()
	}
	for {
		select {
		case c := <-a.inbox:
			c.code = CodeShuttingDown
			c.done <- struct{}{}
			continue
		default:
		}
		break
	}
	for i := 0; i < batchesInFlightMax; i++ {
		<-a.free
	}
}

// idleWait is how long an actor with no deadline sleeps before checking again.
const idleWait = time.Hour

// batchCommandsMax bounds the commands one step applies, so that one batch
// (and the latency of its first command) stays bounded under any load.
const batchCommandsMax = 1024

func (a *actor) step(first *command) {
	b := <-a.free
	nowNanos := a.e.nowNanos()
	a.expire(nowNanos, b)
	if first != nil {
		a.handle(first, nowNanos, b)
	drain:
		for len(b.cmds) < batchCommandsMax {
			select {
			case c := <-a.inbox:
				a.handle(c, nowNanos, b)
			default:
				break drain
			}
		}
	}
	if len(b.cmds) == 0 && len(b.offsets) == 0 {
		a.free <- b
		return
	}
	b.counts, b.releaseDueNanos = a.counts, a.releaseDueNanos()
	a.e.journal.Submit(b.records(), b.onDurable)
}

// releaseDueNanos is the earliest time at which one of the actor's
// deadlines may give units back (math.MaxInt64: none is set). The heap
// also keeps deadlines of holds and orders that have finished since, so
// this is never later than the true time.
func (a *actor) releaseDueNanos() int64 {
	if a.deadlines.len() == 0 {
		return math.MaxInt64
	}
	return a.deadlines.min().atNanos
}

// expire releases holds and orders whose deadline has passed, as records.
func (a *actor) expire(nowNanos int64, b *batch) {
	for n := 0; a.deadlines.len() > 0 && a.deadlines.min().atNanos <= nowNanos && n < batchCommandsMax; n++ {
		d := a.deadlines.pop()
		if d.orderID == 0 {
			if d.holdSeq < a.holds.firstSeq {
				continue // forgotten: long finished
			}
			h := a.holds.at(d.holdSeq)
			if h.status == HoldActive && h.expiresNanos <= nowNanos {
				a.emit(b, &record{kind: recHoldExpired, atNanos: nowNanos, product: a.id, holdSeq: d.holdSeq})
			}
			continue
		}
		o, ok := a.orders.get(d.orderID)
		if ok && o.status == OrderPending && o.deadlineNanos == d.atNanos {
			a.emit(b, &record{kind: recOrderTimedOut, atNanos: nowNanos, product: a.id, orderID: d.orderID})
		}
	}
}

// emit applies r and adds it to b, so that it is made durable with b.
func (a *actor) emit(b *batch, r *record) (applied bool) {
	b.add(r)
	return a.apply(r)
}

// handle answers one command, emitting the records it causes into b. The
// answer is released when b is durable.
func (a *actor) handle(c *command, nowNanos int64, b *batch) {
	b.cmds = append(b.cmds, c)
	switch c.kind {
	case cmdHold:
		a.handleHold(c, nowNanos, b)
	case cmdGetHold:
		h, ok := a.holds.get(c.token)
		if !ok {
			c.code = CodeHoldNotFound
			return
		}
		c.hold = a.holdView(c.token.Seq, h, nowNanos)
	case cmdOrder:
		a.handleOrder(c, nowNanos, b)
	case cmdGetOrder:
		o, ok := a.orders.get(c.orderID)
		if !ok {
			c.code = CodeOrderNotFound
			return
		}
		c.order = a.orderView(c.orderID, o)
	case cmdPayment:
		if _, ok := a.orders.get(c.orderID); !ok {
			panic("engine: payment routed to an actor that does not own the order")
		}
		r := record{kind: recPaymentApplied, atNanos: nowNanos, product: a.id, orderID: c.orderID,
			success: c.payment.Success, reason: c.payment.FailureReason, key: c.claim.recordKey()}
		c.applied = a.emit(b, &r)
		o, _ := a.orders.get(c.orderID)
		c.order = a.orderView(c.orderID, o)
	case cmdRestock:
		if c.qty > StockMax-a.counts.total {
			c.code = CodeInvalidArgument
			return
		}
		a.emit(b, &record{kind: recProductRestocked, atNanos: nowNanos, product: a.id, qty: c.qty})
		c.product = a.liveView()
	case cmdSync:
		// Nothing to do: the answer is released with the batch.
	}
}

func (a *actor) handleHold(c *command, nowNanos int64, b *batch) {
	switch {
	case c.qty < 1:
		c.code = CodeInvalidArgument
	case c.qty > a.maxPerHold:
		c.code = CodeQtyAboveMax
	case c.qty > a.counts.available:
		c.code = CodeInsufficientStock
		c.available = a.counts.available
		if c.claim != nil {
			a.emit(b, &record{kind: recHoldRejected, atNanos: nowNanos, product: a.id, qty: c.qty,
				available: c.available, key: c.claim.recordKey()})
		}
	default:
		r := record{kind: recHoldCreated, atNanos: nowNanos, product: a.id, qty: c.qty,
			holdSeq: a.holds.nextSeq(), deadline: nowNanos + int64(a.e.cfg.HoldTTL)}
		a.newSecret(&r.secret)
		if c.claim != nil {
			r.key = c.claim.recordKey()
		}
		a.emit(b, &r)
		c.hold = a.holdView(r.holdSeq, a.holds.at(r.holdSeq), nowNanos)
	}
}

// newSecret draws a hold secret from the actor's CSPRNG. Two holds sharing
// 128 random bits is as likely as guessing one, so no lookup guards it.
func (a *actor) newSecret(dst *[16]byte) {
	lo, hi := a.rng.Uint64(), a.rng.Uint64()
	for i := 0; i < 8; i++ {
		dst[i] = byte(lo >> (8 * i))
		dst[8+i] = byte(hi >> (8 * i))
	}
}

func (a *actor) handleOrder(c *command, nowNanos int64, b *batch) {
	h, ok := a.holds.get(c.token)
	if !ok {
		c.code = CodeHoldNotFound
		return
	}
	switch {
	case h.status == HoldOrdered:
		o, _ := a.orders.get(h.orderID)
		c.order = a.orderView(h.orderID, o)
		return
	case h.status == HoldExpired:
		c.code = CodeHoldExpired
		return
	case h.expiresNanos <= nowNanos:
		// Expired by the clock before its timer ran: release it now.
		a.emit(b, &record{kind: recHoldExpired, atNanos: nowNanos, product: a.id, holdSeq: c.token.Seq})
		c.code = CodeHoldExpired
		return
	}
	r := record{kind: recOrderCreated, atNanos: nowNanos, product: a.id, holdSeq: c.token.Seq,
		orderID: a.e.allocOrderID()}
	if a.e.cfg.OrderTTL > 0 {
		r.deadline = nowNanos + int64(a.e.cfg.OrderTTL)
	}
	a.emit(b, &r)
	c.created = true
	o, _ := a.orders.get(r.orderID)
	c.order = a.orderView(r.orderID, o)
}

func (a *actor) holdView(seq uint64, h *holdState, nowNanos int64) Hold {
	status := h.status
	if status == HoldActive && h.expiresNanos <= nowNanos {
		status = HoldExpired // its expiry record is on its way
	}
	return Hold{Token: HoldToken{ProductID: a.id, Seq: seq, Secret: h.secret}, ProductID: a.id, Qty: h.qty,
		ExpiresAt: time.Unix(0, h.expiresNanos).UTC(), Status: status, OrderID: h.orderID}
}

func (a *actor) orderView(id uint64, o orderState) Order {
	return Order{ID: id, ProductID: a.id, Qty: o.qty, AmountCents: o.amountCents, Status: o.status,
		Token: HoldToken{ProductID: a.id, Seq: o.holdSeq, Secret: o.secret}, CreatedAt: time.Unix(0, o.createdNanos).UTC(),
		UpdatedAt: time.Unix(0, o.updatedNanos).UTC(), FailureReason: o.failureReason}
}

// liveView is the product with the actor's current (maybe not yet durable)
// counts, for answers that are released only once durable.
func (a *actor) liveView() Product {
	return Product{ID: a.id, Name: a.name, PriceCents: a.priceCents, MaxPerHold: a.maxPerHold,
		TotalStock: a.counts.total, Available: a.counts.available, Reserved: a.counts.reserved, Sold: a.counts.sold}
}
