package engine

import (
	"fmt"
	"testing"
	"time"
)

// answerWindow is how long a test makes sure that an answer needing the
// actor does not come while the actor is paused. answerWait bounds the
// wait for one that needs no actor: the actor stays paused meanwhile, so
// a slow machine only makes the test slower, never wrong.
const (
	answerWindow = 200 * time.Millisecond
	answerWait   = 10 * time.Second
)

// holdAsync starts an unkeyed hold and returns where its answer arrives.
func holdAsync(e *Engine, productID uint64, qty int64) <-chan HoldReply {
	ch := make(chan HoldReply, 1)
	go func() { ch <- e.CreateHold(productID, qty, nil) }()
	return ch
}

// answerAfterResume checks that answer does not come while the actors are
// paused (answerWindow), then resumes them and returns it: the answer of a
// hold that had to go through its actor.
func answerAfterResume(t *testing.T, answer <-chan HoldReply, resume func()) HoldReply {
	t.Helper()
	select {
	case r := <-answer:
		resume()
		t.Fatalf("answered %s while the actor was paused: not through the actor", r.Code)
	case <-time.After(answerWindow):
	}
	resume()
	return <-answer
}

// soldOutPaused is an engine whose product 1 has its one unit durably held,
// with every actor paused: from here on only an answer that needs no actor
// can come before resume.
func soldOutPaused(t *testing.T, fromDurable bool) (te *testEngine, resume func()) {
	t.Helper()
	te = newTestEngineConfigured(t, func(c *Config) { c.RefuseFromDurableCounts = fromDurable },
		ProductSpec{ID: 1, Name: "Last", PriceCents: 1, TotalStock: 1, MaxPerHold: 1})
	te.mustHold(1, 1)
	resume, err := te.Pause()
	if err != nil {
		t.Fatal(err)
	}
	return te, resume
}

// TestSoldOutRefusedWithoutTheActor: with RefuseFromDurableCounts, a hold
// on a sold-out product is refused from the durable counts even while the
// product's actor is paused; without it, the refusal waits for the actor.
func TestSoldOutRefusedWithoutTheActor(t *testing.T) {
	t.Run("on", func(t *testing.T) {
		te, resume := soldOutPaused(t, true)
		defer resume()
		select {
		case r := <-holdAsync(te.Engine, 1, 1):
			if r.Code != CodeInsufficientStock || r.Available != 0 {
				t.Fatalf("hold on a sold-out product = %s (available %d), want insufficient_stock, 0", r.Code, r.Available)
			}
		case <-time.After(answerWait):
			t.Fatalf("no refusal within %v while the actor is paused: it went through the actor", answerWait)
		}
	})
	t.Run("off", func(t *testing.T) {
		te, resume := soldOutPaused(t, false)
		if r := answerAfterResume(t, holdAsync(te.Engine, 1, 1), resume); r.Code != CodeInsufficientStock {
			t.Fatalf("hold on a sold-out product = %s, want insufficient_stock", r.Code)
		}
	})
}

// TestRefusalFromDurableCountsWaitsForDueDeadlines: once the held unit's
// hold has expired by the clock, the durable counts (which still show it
// held) must not refuse: the hold goes to the actor, which releases the
// expired hold first and grants the unit.
func TestRefusalFromDurableCountsWaitsForDueDeadlines(t *testing.T) {
	te, resume := soldOutPaused(t, true)
	te.clock.Advance(te.cfg.HoldTTL) // the actor is paused: nothing is released yet
	if r := answerAfterResume(t, holdAsync(te.Engine, 1, 1), resume); r.Code != OK {
		t.Fatalf("hold after the only hold expired = %s, want ok", r.Code)
	}
}

// TestRefusalFromDurableCountsSeesEveryAnswer: a refusal from the durable
// counts never contradicts an answer already given. Units released by a
// failed payment, acknowledged before the next hold starts, are granted
// to it, not refused.
func TestRefusalFromDurableCountsSeesEveryAnswer(t *testing.T) {
	te := newTestEngineConfigured(t, func(c *Config) { c.RefuseFromDurableCounts = true },
		ProductSpec{ID: 1, Name: "Last", PriceCents: 1, TotalStock: 1, MaxPerHold: 1})
	for round := 0; round < 50; round++ {
		o := te.mustOrder(te.mustHold(1, 1).Token)
		if r := te.CreateHold(1, 1, nil); r.Code != CodeInsufficientStock {
			t.Fatalf("round %d: hold with the unit ordered = %s, want insufficient_stock", round, r.Code)
		}
		if r := te.ApplyPayment(Payment{OrderID: o.ID, Success: false}, []byte(fmt.Sprintf("failed-%d", round))); r.Code != OK {
			t.Fatalf("round %d: failed payment = %s", round, r.Code)
		}
		// The cancelled order's unit is back: the next hold is granted.
		// The expiry of that hold (2 minutes) frees the unit again.
		h := te.mustHold(1, 1)
		te.advance(te.cfg.HoldTTL)
		if got, _ := te.GetHold(h.Token); got.Status != HoldExpired {
			t.Fatalf("round %d: hold after its TTL is %s", round, got.Status)
		}
	}
}
