package linearize

import (
	"github.com/anishathalye/porcupine"
)

// NewModel returns the sequential specification of docs/API.md for a server
// seeded with catalog, partitioned per product (see partition.go).
//
// Step accepts an answered request only if its answer is the one docs/API.md
// gives in the current state. An unanswered request has two successors: the
// state unchanged (it never took effect) and the state with the effect the
// request has if it reached the server. The model is therefore
// nondeterministic; porcupine checks it over sets of states, which stay
// single states while no request is unanswered. A 503 (overloaded,
// shutting_down) changes nothing.
func NewModel(catalog []Product) porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Partition: partition,
		Init:      func() []any { return []any{newState(catalog).sealed()} },
		Step: func(st, in, out any) []any {
			s, i, o := st.(*state), in.(Input), out.(Output)
			if o.Unknown {
				if next := unanswered(s, i); next != s {
					return []any{s, next.sealed()}
				}
				return []any{s}
			}
			if ok, next := step(s, i, o); ok {
				if next != s {
					next.sealed()
				}
				return []any{next}
			}
			return nil
		},
		Equal:             func(a, b any) bool { return stateEqual(a.(*state), b.(*state)) },
		Hash:              func(st any) uint64 { return st.(*state).hash },
		DescribeOperation: func(in, out any) string { return describeOp(in.(Input), out.(Output)) },
		DescribeState:     func(st any) string { return describeState(st.(*state)) },
	}
	return nm.ToModel()
}

// step is the deterministic part of the model: whether out, an answer, is
// the answer to in in state s, and the state after it.
func step(s *state, in Input, out Output) (bool, *state) {
	if out.HTTP == 503 {
		return out.Error == "overloaded" || out.Error == "shutting_down", s
	}
	switch in.Kind {
	case KindHold:
		return stepHold(s, in, out)
	case KindGetHold:
		return out == getHold(s, in.Token), s
	case KindOrder:
		return stepOrder(s, in, out)
	case KindGetOrder:
		return out == getOrder(s, in.OrderID), s
	case KindWebhook:
		return stepWebhook(s, in, out)
	case KindGetProduct:
		return out == getProduct(s, in.ProductID), s
	case KindExpireHold:
		return out == Output{}, expireHold(s, in.Token)
	case KindExpireOrder:
		return out == Output{}, expireOrder(s, in.OrderID)
	}
	return false, s
}

func errorOut(status int, code string) Output { return Output{HTTP: status, Error: code} }

// unanswered applies the effect in has if it reached the server. For a hold
// the server's token is unknown: the hold gets a placeholder name, which a
// replay under its key may reveal, and which its expiry names (see
// AddExpiries). For an order the id is the hint found after the run.
func unanswered(s *state, in Input) *state {
	switch in.Kind {
	case KindHold:
		if refused, _ := holdRefusal(s, in); refused {
			return s
		}
		if _, seen := s.holdKeys[in.Key]; seen && in.Key != "" {
			return s
		}
		_, next := freshHold(s, in, placeholderName(in.Seq))
		return next
	case KindOrder:
		h, ok := s.holds[in.Token]
		if !ok || h.orderID != 0 || h.expired || in.HintOrderID == 0 {
			return s
		}
		if _, used := s.orders[in.HintOrderID]; used {
			return s
		}
		return createOrder(s, in.Token, in.HintOrderID)
	case KindWebhook:
		if _, seen := s.hookKeys[in.Key]; seen || in.Key == "" {
			return s
		}
		_, next := deliver(s, in)
		return next
	}
	return s
}

// holdRefusal reports the answers given before any key is looked at.
func holdRefusal(s *state, in Input) (bool, Output) {
	p, ok := s.products[in.ProductID]
	switch {
	case !ok:
		return true, errorOut(404, "product_not_found")
	case in.Qty < 1 || in.Qty > p.maxPerHold:
		return true, errorOut(422, "validation_failed")
	}
	return false, Output{}
}

func stepHold(s *state, in Input, out Output) (bool, *state) {
	if refused, want := holdRefusal(s, in); refused {
		return out == want, s
	}
	if k, seen := s.holdKeys[in.Key]; seen && in.Key != "" {
		if k.productID != in.ProductID || k.qty != in.Qty {
			return out == errorOut(422, "idempotency_key_reused"), s
		}
		want := k.answer
		want.Replayed = true
		if !isPlaceholder(want.Token) {
			return out == want, s
		}
		// The first request got no answer; this replay names its hold.
		placeholder := want.Token
		want.Token = out.Token
		if out != want || !freshToken(s, out.Token) {
			return false, s
		}
		next := s.copy().withHolds().withHoldKeys()
		next.holds[out.Token] = next.holds[placeholder]
		delete(next.holds, placeholder)
		k.answer.Token = out.Token
		next.holdKeys[in.Key] = k
		return true, next
	}
	if out.HTTP == 201 && !freshToken(s, out.Token) {
		return false, s
	}
	want, next := freshHold(s, in, out.Token)
	return out == want, next
}

func freshToken(s *state, token string) bool {
	_, used := s.holds[token]
	return token != "" && !isPlaceholder(token) && !used
}

// freshHold runs a hold that is neither refused nor a replay: it reserves
// the units under token if they are available, else answers 409 with the
// units available now. Under a key used again later, the answer is
// remembered.
func freshHold(s *state, in Input, token string) (Output, *state) {
	p := s.products[in.ProductID]
	var want Output
	next := s.copy()
	if p.available >= in.Qty {
		want = Output{HTTP: 201, Token: token, ProductID: in.ProductID, Qty: in.Qty}
		p.available -= in.Qty
		p.reserved += in.Qty
		next.withProducts().withHolds()
		next.products[in.ProductID] = p
		next.holds[token] = hold{productID: in.ProductID, qty: in.Qty}
	} else {
		want = errorOut(409, "insufficient_stock")
		want.Available = p.available
	}
	if in.Key != "" && !in.KeyOnce {
		next.withHoldKeys()
		next.holdKeys[in.Key] = holdKey{productID: in.ProductID, qty: in.Qty, answer: want}
	}
	return want, next
}

func getHold(s *state, token string) Output {
	h, ok := s.holds[token]
	if !ok || isPlaceholder(token) {
		return errorOut(404, "hold_not_found")
	}
	out := Output{HTTP: 200, Token: token, ProductID: h.productID, Qty: h.qty, State: "active"}
	switch {
	case h.orderID != 0:
		out.State, out.OrderID = "ordered", h.orderID
	case h.expired:
		out.State = "expired"
	}
	return out
}

func stepOrder(s *state, in Input, out Output) (bool, *state) {
	h, ok := s.holds[in.Token]
	if !ok || isPlaceholder(in.Token) {
		return out == errorOut(404, "hold_not_found"), s
	}
	switch {
	case h.orderID != 0:
		return out == orderOut(200, h.orderID, s.orders[h.orderID]), s
	case h.expired:
		return out == errorOut(410, "hold_expired"), s
	}
	id := out.OrderID
	if _, used := s.orders[id]; used || id == 0 || out.HTTP != 201 {
		return false, s
	}
	next := createOrder(s, in.Token, id)
	return out == orderOut(201, id, next.orders[id]), next
}

// createOrder turns the active hold token into pending order id, then
// applies the payment queued for id, if any.
func createOrder(s *state, token string, id uint64) *state {
	h := s.holds[token]
	next := s.copy().withHolds().withOrders()
	h.orderID = id
	next.holds[token] = h
	p := s.products[h.productID]
	next.orders[id] = order{productID: h.productID, qty: h.qty, amount: h.qty * p.priceCents,
		token: token, state: "pending"}
	if ev, ok := s.queued[id]; ok {
		next.withQueued()
		delete(next.queued, id)
		pay(next, id, ev)
	}
	return next
}

// pay applies a payment to order id in next (whose orders map next owns)
// and reports whether it changed the order: a final order never changes.
func pay(next *state, id uint64, ev event) bool {
	o := next.orders[id]
	if o.state != "pending" {
		return false
	}
	next.withProducts()
	p := next.products[o.productID]
	p.reserved -= o.qty
	if ev.success {
		o.state = "paid"
		p.sold += o.qty
	} else {
		o.state, o.reason = "cancelled", ev.reason
		p.available += o.qty
	}
	next.orders[id] = o
	next.products[o.productID] = p
	return true
}

func orderOut(status int, id uint64, o order) Output {
	return Output{HTTP: status, OrderID: id, ProductID: o.productID, Qty: o.qty, Amount: o.amount,
		State: o.state, Token: o.token, Reason: o.reason}
}

func getOrder(s *state, id uint64) Output {
	o, ok := s.orders[id]
	if !ok {
		return errorOut(404, "order_not_found")
	}
	return orderOut(200, id, o)
}

func stepWebhook(s *state, in Input, out Output) (bool, *state) {
	if in.Key == "" {
		return out == errorOut(400, "idempotency_key_required"), s
	}
	if k, seen := s.hookKeys[in.Key]; seen {
		if k.orderID != in.OrderID || k.success != in.Success || k.reason != in.Reason {
			return out == errorOut(422, "idempotency_key_reused"), s
		}
		want := k.answer
		want.Replayed = true
		return out == want, s
	}
	want, next := deliver(s, in)
	return out == want, next
}

// deliver runs a webhook under a key not seen before: applied to an
// existing order, or queued for one that does not exist yet (only the
// first queued event for an id will matter). The answer is remembered.
func deliver(s *state, in Input) (Output, *state) {
	next := s.copy()
	var want Output
	ev := event{success: in.Success, reason: in.Reason}
	if _, exists := s.orders[in.OrderID]; exists {
		next.withOrders()
		applied := pay(next, in.OrderID, ev)
		want = Output{HTTP: 200, OrderID: in.OrderID, State: next.orders[in.OrderID].state, Applied: applied}
	} else {
		want = Output{HTTP: 202, OrderID: in.OrderID, State: "queued"}
		if _, first := s.queued[in.OrderID]; !first {
			next.withQueued()
			next.queued[in.OrderID] = ev
		}
	}
	if !in.KeyOnce {
		next.withHookKeys()
		next.hookKeys[in.Key] = hookKey{orderID: in.OrderID, success: in.Success, reason: in.Reason, answer: want}
	}
	return want, next
}

func getProduct(s *state, id uint64) Output {
	p, ok := s.products[id]
	if !ok {
		return errorOut(404, "product_not_found")
	}
	return Output{HTTP: 200, ProductID: id, Total: p.total, Available: p.available, Reserved: p.reserved, Sold: p.sold}
}

// expireHold gives an active hold's units back; an ordered hold keeps them
// for its order.
func expireHold(s *state, token string) *state {
	h, ok := s.holds[token]
	if !ok || h.orderID != 0 || h.expired {
		return s
	}
	next := s.copy().withHolds().withProducts()
	h.expired = true
	next.holds[token] = h
	p := next.products[h.productID]
	p.available += h.qty
	p.reserved -= h.qty
	next.products[h.productID] = p
	return next
}

// expireOrder cancels a pending order for payment_timeout.
func expireOrder(s *state, id uint64) *state {
	o, ok := s.orders[id]
	if !ok || o.state != "pending" {
		return s
	}
	next := s.copy().withOrders()
	pay(next, id, event{success: false, reason: "payment_timeout"})
	return next
}
