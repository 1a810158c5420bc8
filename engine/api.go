package engine

// This file is the engine's request API, called by the transport from its
// request goroutines. Every answer is released only once the records it
// depends on are durable.

// Products appends every product, ordered by id, to dst.
func (e *Engine) Products(dst []Product) []Product {
	for _, a := range e.products.Load().ordered {
		dst = append(dst, a.view())
	}
	return dst
}

// Product returns one product, read without a round trip to its actor.
func (e *Engine) Product(id uint64) (Product, bool) {
	a := e.actor(id)
	if a == nil {
		return Product{}, false
	}
	return a.view(), true
}

// CreateHold reserves qty units of a product. With an idempotency key, a
// repeat of the same request gets the first answer (Replayed set), a
// different request under the key gets CodeKeyReused, and concurrent repeats
// reserve once.
func (e *Engine) CreateHold(productID uint64, qty int64, key []byte) HoldReply {
	if code := e.refuse(); code != OK {
		return HoldReply{Code: code}
	}
	a := e.actor(productID)
	switch {
	case a == nil:
		return HoldReply{Code: CodeProductNotFound}
	case qty < 1:
		return HoldReply{Code: CodeInvalidArgument}
	case qty > a.maxPerHold:
		return HoldReply{Code: CodeQtyAboveMax}
	}
	if len(key) > 0 {
		return e.createHoldKeyed(a, qty, key)
	}
	if e.cfg.RefuseFromDurableCounts {
		// The published counts are a state that includes every answer
		// already given. If none of its deadlines is due, its available
		// units are available now, and this refusal is what the actor
		// would answer at the moment of the load.
		c, releaseDueNanos := a.published.load()
		if qty > c.available && e.clockNanos() < releaseDueNanos {
			return HoldReply{Code: CodeInsufficientStock, Available: c.available}
		}
	}
	c := getCommand(cmdHold)
	c.qty = qty
	a.call(c)
	reply := HoldReply{Code: c.code, Hold: c.hold, Available: c.available}
	putCommand(c)
	return reply
}

// keyStage names the points of a keyed request where a test hook runs.
type keyStage uint8

const (
	keyClaimed  keyStage = iota + 1 // the key is claimed; nothing was sent to an actor yet
	keyAnswered                     // the answer is durable; the claim is not ended yet
)

func (e *Engine) hook(s keyStage) {
	if e.keyHook != nil {
		e.keyHook(s)
	}
}

// createHoldKeyed is CreateHold under an idempotency key.
func (e *Engine) createHoldKeyed(a *actor, qty int64, key []byte) HoldReply {
	claim, ans, outcome := e.holdKeys.begin(key, holdFingerprint(a.id, qty), e.nowNanos())
	if code := outcome.refusal(); code != OK {
		return HoldReply{Code: code}
	}
	if outcome == keyReplay {
		e.stats.HoldsReplayed.Add(1)
		r := ans.holdReply()
		r.Replayed = true
		return r
	}
	// The claim ends on every path, a panic included: a claim left open
	// would make every later request under the key wait forever. Once the
	// answer is durable it is kept (a retry replays it); before, the claim
	// is aborted (a retry runs afresh). A panic of the actor itself is
	// fatal to the process, so it leaves no claim behind either.
	durable := false
	defer func() { e.holdKeys.end(claim, durable) }()
	e.hook(keyClaimed)
	c := getCommand(cmdHold)
	c.qty = qty
	c.claim = claim
	a.call(c)
	reply := HoldReply{Code: c.code, Hold: c.hold, Available: c.available}
	putCommand(c)
	durable = reply.Code == OK || reply.Code == CodeInsufficientStock
	e.hook(keyAnswered)
	return reply
}

// GetHold returns a hold as it is now.
func (e *Engine) GetHold(t HoldToken) (Hold, Code) {
	if code := e.refuse(); code != OK {
		return Hold{}, code
	}
	a := e.actor(t.ProductID)
	if a == nil {
		return Hold{}, CodeHoldNotFound
	}
	c := getCommand(cmdGetHold)
	c.token = t
	a.call(c)
	h, code := c.hold, c.code
	putCommand(c)
	return h, code
}

// CreateOrder turns an active hold into a pending order; a hold makes at
// most one order, and asking again returns it (Created false).
func (e *Engine) CreateOrder(t HoldToken) OrderReply {
	if code := e.refuse(); code != OK {
		return OrderReply{Code: code}
	}
	a := e.actor(t.ProductID)
	if a == nil {
		return OrderReply{Code: CodeHoldNotFound}
	}
	c := getCommand(cmdOrder)
	c.token = t
	a.call(c)
	reply := OrderReply{Code: c.code, Order: c.order, Created: c.created}
	putCommand(c)
	return reply
}

// GetOrder returns an order as it is now.
func (e *Engine) GetOrder(id uint64) (Order, Code) {
	if code := e.refuse(); code != OK {
		return Order{}, code
	}
	pid, ok := e.orders.product(id)
	if !ok {
		return Order{}, CodeOrderNotFound
	}
	c := getCommand(cmdGetOrder)
	c.orderID = id
	e.actor(pid).call(c)
	o, code := c.order, c.code
	putCommand(c)
	return o, code
}

// ApplyPayment applies a payment provider's report under its idempotency key
// (required). An order that does not exist yet gets the event queued durably
// and applied the moment the order is created; an order id more than
// OrderIDAheadMax beyond the highest handed out is CodeOrderNotFound.
func (e *Engine) ApplyPayment(p Payment, key []byte) PaymentReply {
	if code := e.refuse(); code != OK {
		return PaymentReply{Code: code}
	}
	if len(key) == 0 || p.OrderID == 0 {
		return PaymentReply{Code: CodeInvalidArgument}
	}
	if e.orderIDTooFarAhead(p.OrderID) {
		// Before the key: a refusal that is not remembered, as a 404 is not.
		return PaymentReply{Code: CodeOrderNotFound}
	}
	claim, ans, outcome := e.webhookKeys.begin(key, paymentFingerprint(p.OrderID, p.Success, p.FailureReason), e.nowNanos())
	if code := outcome.refusal(); code != OK {
		return PaymentReply{Code: code}
	}
	if outcome == keyReplay {
		e.stats.WebhooksReplayed.Add(1)
		r := ans.paymentReply()
		r.Replayed = true
		return r
	}
	// The claim ends on every path, a panic included (see createHoldKeyed).
	durable := false
	defer func() { e.webhookKeys.end(claim, durable) }()
	e.hook(keyClaimed)
	reply := e.deliverPayment(p, claim)
	durable = reply.Code == OK
	e.hook(keyAnswered)
	return reply
}

func (e *Engine) deliverPayment(p Payment, claim *keyClaim) PaymentReply {
	s := e.orders.shard(p.OrderID)
	s.mu.Lock()
	pid, exists := s.owner[p.OrderID]
	if !exists {
		// The mutex is held until the record is submitted: see orderDir.
		if e.orders.queuedCount.Load() >= e.orders.queuedMax {
			s.mu.Unlock()
			return PaymentReply{Code: CodeTooManyQueued}
		}
		nowNanos := e.nowNanos()
		r := record{kind: recWebhookQueued, atNanos: nowNanos, orderID: p.OrderID, success: p.Success,
			reason: p.FailureReason, key: claim.recordKey(), deadline: nowNanos + int64(e.cfg.QueuedWebhookTTL)}
		reply := e.queueWebhookLocked(s, &r)
		wait := e.submit(&r)
		s.mu.Unlock()
		if code := wait(); code != OK {
			return PaymentReply{Code: code}
		}
		return reply
	}
	s.mu.Unlock()
	c := getCommand(cmdPayment)
	c.orderID = p.OrderID
	c.payment = p
	c.claim = claim
	e.actor(pid).call(c)
	reply := PaymentReply{Code: c.code, OrderID: p.OrderID, Status: c.order.Status, Applied: c.applied}
	putCommand(c)
	return reply
}

// queueWebhookLocked applies a queued-webhook record; the caller holds the
// order id's shard mutex.
func (e *Engine) queueWebhookLocked(s *orderShard, r *record) PaymentReply {
	e.orders.queueLocked(s, r.orderID, queuedWebhook{success: r.success, reason: r.reason, deadlineNanos: r.deadline})
	reply := PaymentReply{Code: OK, OrderID: r.orderID, Queued: true}
	e.webhookKeys.remember(r.key, r.atNanos, paymentAnswer(paymentFingerprint(r.orderID, r.success, r.reason), &reply))
	e.stats.WebhooksQueued.Add(1)
	return reply
}

// CreateProduct creates a product (admin API and seeding). A zero ID gets
// the next free id.
func (e *Engine) CreateProduct(spec ProductSpec) (Product, Code) {
	if code := e.refuse(); code != OK {
		return Product{}, code
	}
	if spec.MaxPerHold == 0 {
		spec.MaxPerHold = DefaultMaxPerHold
	}
	if spec.Name == "" || spec.PriceCents < 0 || spec.TotalStock < 0 || spec.TotalStock > StockMax || spec.MaxPerHold < 1 {
		return Product{}, CodeInvalidArgument
	}
	e.productsMu.Lock()
	defer e.productsMu.Unlock()
	set := e.products.Load()
	if spec.ID == 0 {
		var last uint64
		if n := len(set.ordered); n > 0 {
			last = set.ordered[n-1].id
		}
		spec.ID = e.nextID(last)
	} else if set.byID[spec.ID] != nil {
		return Product{}, CodeProductExists
	} else if !e.OwnsID(spec.ID) {
		return Product{}, CodeInvalidArgument
	}
	r := record{kind: recProductCreated, atNanos: e.nowNanos(), product: spec.ID, name: spec.Name,
		priceCents: spec.PriceCents, qty: spec.TotalStock, maxPerHold: spec.MaxPerHold}
	if code := e.submit(&r)(); code != OK {
		return Product{}, code
	}
	a := e.addProduct(&r)
	if e.started {
		e.startActor(a)
	}
	return a.view(), OK
}

// Restock adds qty units to a product's total and available stock. A total
// above StockMax is refused (CodeInvalidArgument), checked by the actor, so
// that concurrent restocks cannot pass the limit together.
func (e *Engine) Restock(productID uint64, qty int64) (Product, Code) {
	if code := e.refuse(); code != OK {
		return Product{}, code
	}
	a := e.actor(productID)
	if a == nil {
		return Product{}, CodeProductNotFound
	}
	if qty < 1 || qty > StockMax {
		return Product{}, CodeInvalidArgument
	}
	c := getCommand(cmdRestock)
	c.qty = qty
	a.call(c)
	p, code := c.product, c.code
	putCommand(c)
	return p, code
}
