package engine

import (
	"sync"
	"testing"
	"time"
)

func TestOrderFromHold(t *testing.T) {
	te := newTestEngine(t, widget)
	h := te.mustHold(1, 3)
	o := te.mustOrder(h.Token)
	if o.ID == 0 || o.ProductID != 1 || o.Qty != 3 || o.AmountCents != 750 || o.Status != OrderPending || o.Token != h.Token {
		t.Fatalf("order = %+v", o)
	}
	if !o.CreatedAt.Equal(testEpoch) || !o.UpdatedAt.Equal(testEpoch) {
		t.Fatalf("timestamps = %v %v", o.CreatedAt, o.UpdatedAt)
	}
	again := te.CreateOrder(h.Token)
	if again.Code != OK || again.Created || again.Order != o {
		t.Fatalf("repeat = %+v", again)
	}
	got, code := te.GetHold(h.Token)
	if code != OK || got.Status != HoldOrdered || got.OrderID != o.ID {
		t.Fatalf("hold after order = %+v", got)
	}
	if p := te.product(1); p.Reserved != 3 || p.Available != 7 {
		t.Fatalf("order changed stock: %+v", p)
	}
	te.advance(5 * time.Minute) // past the hold's TTL: the order keeps the units
	if p := te.product(1); p.Reserved != 3 {
		t.Fatalf("hold expiry released an ordered hold: %+v", p)
	}
	if got, _ := te.GetHold(h.Token); got.Status != HoldOrdered {
		t.Fatalf("ordered hold became %s", got.Status)
	}
}

func TestOrderRefusals(t *testing.T) {
	te := newTestEngine(t, widget)
	h := te.mustHold(1, 1)
	unknownSecret := h.Token
	unknownSecret.Secret[0] ^= 1
	unknownProduct := h.Token
	unknownProduct.ProductID = 42
	for name, tok := range map[string]HoldToken{"unknown secret": unknownSecret, "unknown product": unknownProduct} {
		if r := te.CreateOrder(tok); r.Code != CodeHoldNotFound {
			t.Errorf("%s: %s", name, r.Code)
		}
		if _, code := te.GetHold(tok); code != CodeHoldNotFound {
			t.Errorf("GetHold %s: %s", name, code)
		}
	}
	if _, code := te.GetOrder(12345); code != CodeOrderNotFound {
		t.Errorf("GetOrder unknown: %s", code)
	}
}

func TestOrderIDsAreUniqueAcrossRestart(t *testing.T) {
	te := newTestEngine(t, widget)
	seen := map[uint64]bool{}
	for i := 0; i < 3; i++ {
		o := te.mustOrder(te.mustHold(1, 1).Token)
		seen[o.ID] = true
	}
	te.restart()
	o := te.mustOrder(te.mustHold(1, 1).Token)
	if seen[o.ID] {
		t.Fatalf("order id %d reused after restart", o.ID)
	}
}

func pay(te *testEngine, key string, id uint64, success bool, reason string) PaymentReply {
	return te.ApplyPayment(Payment{OrderID: id, Success: success, FailureReason: reason}, []byte(key))
}

func TestPaymentSuccessSells(t *testing.T) {
	te := newTestEngine(t, widget)
	o := te.mustOrder(te.mustHold(1, 2).Token)
	te.clock.Advance(time.Second)
	r := pay(te, "p1", o.ID, true, "")
	if r.Code != OK || r.Status != OrderPaid || !r.Applied || r.Queued {
		t.Fatalf("reply = %+v", r)
	}
	if p := te.product(1); p.Sold != 2 || p.Reserved != 0 || p.Available != 8 {
		t.Fatalf("product = %+v", p)
	}
	got, _ := te.GetOrder(o.ID)
	if got.Status != OrderPaid || !got.UpdatedAt.Equal(testEpoch.Add(time.Second)) {
		t.Fatalf("order = %+v", got)
	}
}

func TestPaymentFailureCancelsAndReleases(t *testing.T) {
	te := newTestEngine(t, widget)
	o := te.mustOrder(te.mustHold(1, 2).Token)
	r := pay(te, "p1", o.ID, false, "insufficient_funds")
	if r.Status != OrderCancelled || !r.Applied {
		t.Fatalf("reply = %+v", r)
	}
	got, _ := te.GetOrder(o.ID)
	if got.FailureReason != "insufficient_funds" {
		t.Fatalf("failure_reason = %q", got.FailureReason)
	}
	if p := te.product(1); p.Available != 10 || p.Reserved != 0 {
		t.Fatalf("product = %+v", p)
	}
}

func TestFinalStatesNeverChange(t *testing.T) {
	var refunds []uint64
	var mu sync.Mutex
	te := newTestEngine(t, widget)
	te.cfg.OnRefundNeeded = func(orderID, _ uint64) { mu.Lock(); refunds = append(refunds, orderID); mu.Unlock() }
	te.restart() // to pick the hook up

	paid := te.mustOrder(te.mustHold(1, 1).Token)
	pay(te, "a", paid.ID, true, "")
	if r := pay(te, "b", paid.ID, false, "late"); r.Applied || r.Status != OrderPaid {
		t.Fatalf("failure after success = %+v", r)
	}
	cancelled := te.mustOrder(te.mustHold(1, 1).Token)
	pay(te, "c", cancelled.ID, false, "")
	if r := pay(te, "d", cancelled.ID, true, ""); r.Applied || r.Status != OrderCancelled {
		t.Fatalf("success after failure = %+v", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(refunds) != 1 || refunds[0] != cancelled.ID || te.Stats().RefundsNeeded.Load() != 1 {
		t.Fatalf("refunds = %v (stat %d)", refunds, te.Stats().RefundsNeeded.Load())
	}
	if p := te.product(1); p.Sold != 1 || p.Available != 9 {
		t.Fatalf("product = %+v", p)
	}
}

func TestWebhookKeyReplayAndReuse(t *testing.T) {
	te := newTestEngine(t, widget)
	o := te.mustOrder(te.mustHold(1, 1).Token)
	first := pay(te, "w", o.ID, true, "")
	again := pay(te, "w", o.ID, true, "")
	want := first
	want.Replayed = true
	if again != want {
		t.Fatalf("replay = %+v, want %+v", again, want)
	}
	if r := pay(te, "w", o.ID, false, ""); r.Code != CodeKeyReused {
		t.Fatalf("different body = %s", r.Code)
	}
	if te.Stats().WebhooksApplied.Load() != 1 {
		t.Fatalf("applied %d times", te.Stats().WebhooksApplied.Load())
	}
	if r := te.ApplyPayment(Payment{OrderID: o.ID, Success: true}, nil); r.Code != CodeInvalidArgument {
		t.Fatalf("missing key = %s", r.Code)
	}
}

func TestWebhookConcurrentDuplicatesApplyOnce(t *testing.T) {
	te := newTestEngine(t, widget)
	o := te.mustOrder(te.mustHold(1, 1).Token)
	const deliveries = 50
	replies := make([]PaymentReply, deliveries)
	var wg sync.WaitGroup
	for i := range replies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = pay(te, "dup", o.ID, true, "")
		}()
	}
	wg.Wait()
	fresh := 0
	for _, r := range replies {
		if r.Code != OK || r.Status != OrderPaid || !r.Applied {
			t.Fatalf("reply = %+v", r)
		}
		if !r.Replayed {
			fresh++
		}
	}
	if fresh != 1 || te.Stats().WebhooksApplied.Load() != 1 {
		t.Fatalf("%d fresh answers, %d applications; want 1 and 1", fresh, te.Stats().WebhooksApplied.Load())
	}
}

func TestWebhookBeforeOrderIsQueuedAndApplied(t *testing.T) {
	te := newTestEngine(t, widget)
	next := te.lastOrderID.Load() + 1
	r := pay(te, "early", next, true, "")
	if r.Code != OK || !r.Queued || r.OrderID != next {
		t.Fatalf("early webhook = %+v", r)
	}
	o := te.mustOrder(te.mustHold(1, 2).Token)
	if o.ID != next || o.Status != OrderPaid {
		t.Fatalf("order created after its webhook = %+v, want id %d paid", o, next)
	}
	if p := te.product(1); p.Sold != 2 {
		t.Fatalf("product = %+v", p)
	}
	if again := pay(te, "early", next, true, ""); !again.Queued || !again.Replayed {
		t.Fatalf("replay of the queued webhook = %+v, want the 202 again", again)
	}
	te.restart()
	if got, _ := te.GetOrder(next); got.Status != OrderPaid {
		t.Fatalf("after restart the order is %s", got.Status)
	}
}

func TestQueuedWebhookExpires(t *testing.T) {
	te := newTestEngine(t, widget)
	next := te.lastOrderID.Load() + 1
	pay(te, "stale", next, true, "")
	te.clock.Advance(te.cfg.QueuedWebhookTTL)
	o := te.mustOrder(te.mustHold(1, 1).Token)
	if o.ID != next || o.Status != OrderPending {
		t.Fatalf("order = %+v, want %d pending: the queued webhook was stale", o, next)
	}
	te.restart()
	if got, _ := te.GetOrder(next); got.Status != OrderPending {
		t.Fatalf("after restart the order is %s", got.Status)
	}
}

func TestTooManyQueuedWebhooks(t *testing.T) {
	clock := NewFakeClock(testEpoch)
	j := &MemJournal{}
	cfg := testConfig(clock, j)
	cfg.QueuedWebhooksMax = 2
	e := New(cfg)
	e.Start()
	defer e.Stop()
	e.Seed([]ProductSpec{widget})
	for i, id := range []uint64{100, 101} {
		if r := e.ApplyPayment(Payment{OrderID: id, Success: true}, []byte{byte('a' + i)}); !r.Queued {
			t.Fatalf("queue %d: %+v", id, r)
		}
	}
	if r := e.ApplyPayment(Payment{OrderID: 102, Success: true}, []byte("c")); r.Code != CodeTooManyQueued {
		t.Fatalf("third queued = %s", r.Code)
	}
	e.sweep(clock.Now().Add(cfg.QueuedWebhookTTL))
	if r := e.ApplyPayment(Payment{OrderID: 102, Success: true}, []byte("c")); !r.Queued {
		t.Fatalf("after sweeping stale ones: %+v", r)
	}
}

func TestOrderTTLCancelsUnpaidOrders(t *testing.T) {
	te := newTestEngine(t, widget)
	o := te.mustOrder(te.mustHold(1, 2).Token)
	paid := te.mustOrder(te.mustHold(1, 1).Token)
	pay(te, "p", paid.ID, true, "")
	te.advance(te.cfg.OrderTTL - time.Millisecond)
	if got, _ := te.GetOrder(o.ID); got.Status != OrderPending {
		t.Fatalf("order cancelled early: %s", got.Status)
	}
	te.advance(time.Millisecond)
	got, _ := te.GetOrder(o.ID)
	if got.Status != OrderCancelled || got.FailureReason != FailureReasonPaymentTimeout {
		t.Fatalf("order after TTL = %+v", got)
	}
	if p := te.product(1); p.Available != 9 || p.Sold != 1 || p.Reserved != 0 {
		t.Fatalf("product = %+v", p)
	}
	if r := pay(te, "late", o.ID, true, ""); r.Applied || r.Status != OrderCancelled {
		t.Fatalf("late success = %+v", r)
	}
}

func TestOrderTTLZeroKeepsOrdersPending(t *testing.T) {
	clock := NewFakeClock(testEpoch)
	cfg := testConfig(clock, &MemJournal{})
	cfg.OrderTTL = 0
	te := &testEngine{t: t, clock: clock, cfg: cfg, journal: cfg.Journal.(*MemJournal)}
	te.Engine = New(cfg)
	te.Start()
	defer te.Stop()
	te.Seed([]ProductSpec{widget})
	o := te.mustOrder(te.mustHold(1, 1).Token)
	te.advance(48 * time.Hour)
	if got, _ := te.GetOrder(o.ID); got.Status != OrderPending {
		t.Fatalf("order with TTL off became %s", got.Status)
	}
}

// TestKeyMismatchWaitsForTheFirstAnswer: a different request under a key
// whose first request is still in flight is refused only once that first
// request's effect is durable and visible — found by the linearizability
// checker (a 422 answered before the hold it implied showed in the product).
func TestKeyMismatchWaitsForTheFirstAnswer(t *testing.T) {
	j := &gateJournal{entered: make(chan struct{}, 1), gate: make(chan struct{})}
	cfg := testConfig(NewFakeClock(testEpoch), nil)
	cfg.Journal = j
	e := New(cfg)
	if err := e.Replay(appendRecord(nil, &record{kind: recProductCreated, product: 1, name: "x", qty: 10, maxPerHold: 5})); err != nil {
		t.Fatal(err)
	}
	e.Start()
	defer e.Stop()
	first := make(chan HoldReply, 1)
	go func() { first <- e.CreateHold(1, 2, []byte("k")) }()
	<-j.entered // the first hold is applied, its batch not yet durable
	second := make(chan HoldReply, 1)
	go func() { second <- e.CreateHold(1, 1, []byte("k")) }()
	select {
	case r := <-second:
		t.Fatalf("the differing request was answered (%s) before the first was durable", r.Code)
	case <-time.After(50 * time.Millisecond):
	}
	close(j.gate)
	if r := <-first; r.Code != OK {
		t.Fatalf("first = %s", r.Code)
	}
	if r := <-second; r.Code != CodeKeyReused {
		t.Fatalf("second = %s, want idempotency_key_reused", r.Code)
	}
	if p, _ := e.Product(1); p.Reserved != 2 {
		t.Fatalf("product = %+v", p)
	}
}
