package engine

import (
	"strings"
	"testing"
	"time"
)

func TestCreateProductAndRestock(t *testing.T) {
	te := newTestEngine(t, widget)
	p, code := te.CreateProduct(ProductSpec{Name: "New", PriceCents: 10, TotalStock: 3})
	if code != OK || p.ID != 2 || p.MaxPerHold != DefaultMaxPerHold || p.Available != 3 {
		t.Fatalf("created %+v %s", p, code)
	}
	if _, code := te.CreateProduct(ProductSpec{ID: 1, Name: "Dup", TotalStock: 1}); code != CodeProductExists {
		t.Fatalf("duplicate id = %s", code)
	}
	for _, bad := range []ProductSpec{{Name: ""}, {Name: "x", PriceCents: -1}, {Name: "x", TotalStock: -1}, {Name: "x", MaxPerHold: -2}} {
		if _, code := te.CreateProduct(bad); code != CodeInvalidArgument {
			t.Errorf("%+v = %s", bad, code)
		}
	}
	te.mustHold(2, 3)
	if r := te.CreateHold(2, 1, nil); r.Code != CodeInsufficientStock {
		t.Fatalf("hold on sold-out product = %s", r.Code)
	}
	p, code = te.Restock(2, 5)
	if code != OK || p.TotalStock != 8 || p.Available != 5 || p.Reserved != 3 {
		t.Fatalf("restock = %+v %s", p, code)
	}
	if _, code := te.Restock(2, 0); code != CodeInvalidArgument {
		t.Fatalf("restock 0 = %s", code)
	}
	if _, code := te.Restock(9, 1); code != CodeProductNotFound {
		t.Fatalf("restock unknown = %s", code)
	}
	if got := te.Products(nil); len(got) != 2 || got[0].ID != 1 || got[1].ID != 2 {
		t.Fatalf("products = %+v", got)
	}
	te.restart()
	if p := te.product(2); p.TotalStock != 8 || p.Reserved != 3 {
		t.Fatalf("after restart %+v", p)
	}
}

func TestSeedOnlyIntoEmptyLog(t *testing.T) {
	te := newTestEngine(t, widget)
	te.restart()
	created, err := te.Seed([]ProductSpec{{ID: 5, Name: "Other", TotalStock: 1}})
	if err != nil || created {
		t.Fatalf("seed into a non-empty log: created=%v err=%v", created, err)
	}
	if _, ok := te.Product(5); ok {
		t.Fatal("seed product appeared")
	}
}

func TestHoldsExpiredWhileDownAreReleasedAfterStart(t *testing.T) {
	te := newTestEngine(t, widget)
	te.mustHold(1, 4)
	o := te.mustOrder(te.mustHold(1, 2).Token)
	te.Stop()
	te.clock.Advance(5 * time.Minute) // down past the hold TTL, not the order TTL
	next := New(te.cfg)
	for _, rec := range te.journal.Records() {
		if err := next.Replay(rec); err != nil {
			t.Fatal(err)
		}
	}
	before := te.journal.Len()
	next.Start()
	defer next.Stop()
	te.Engine = next
	p := te.product(1) // no settling: Start has released them already
	if p.Available != 8 || p.Reserved != 2 {
		t.Fatalf("after start %+v: the expired hold should be released, the order kept", p)
	}
	if te.journal.Len() != before+1 {
		t.Fatalf("release was not logged: %d new records", te.journal.Len()-before)
	}
	if got, _ := te.GetOrder(o.ID); got.Status != OrderPending {
		t.Fatalf("order %s", got.Status)
	}
}

func TestJournalFailureIsFatal(t *testing.T) {
	te := newTestEngine(t, widget)
	te.journal.Fail()
	if r := te.CreateHold(1, 1, nil); r.Code != CodeJournalFailed {
		t.Fatalf("hold on a failed journal = %s", r.Code)
	}
	if r := te.CreateHold(1, 1, nil); r.Code != CodeJournalFailed {
		t.Fatalf("later hold = %s", r.Code)
	}
	if p := te.product(1); p.Available != 10 {
		t.Fatalf("unacknowledged hold published: %+v", p)
	}
}

func TestStopRefusesNewCommands(t *testing.T) {
	te := newTestEngine(t, widget)
	te.Stop()
	if r := te.CreateHold(1, 1, nil); r.Code != CodeShuttingDown {
		t.Fatalf("hold after Stop = %s", r.Code)
	}
}

// gateJournal blocks every Submit until the gate opens, so a test can stop
// an actor inside its step.
type gateJournal struct {
	entered chan struct{}
	gate    chan struct{}
}

func (j *gateJournal) Submit(records [][]byte, done func(error)) {
	if len(records) == 0 { // Start's round trips: nothing is in flight yet
		done(nil)
		return
	}
	select {
	case j.entered <- struct{}{}:
	default:
	}
	<-j.gate
	done(nil)
}

func TestFullInboxAnswersOverloaded(t *testing.T) {
	j := &gateJournal{entered: make(chan struct{}, 1), gate: make(chan struct{})}
	cfg := DefaultConfig()
	cfg.Journal = j
	cfg.Clock = NewFakeClock(testEpoch)
	cfg.InboxCap = 1
	e := New(cfg)
	// The product is replayed, not created, so nothing waits on the gate yet.
	if err := e.Replay(appendRecord(nil, &record{kind: recProductCreated, product: 1, name: "x", qty: 10, maxPerHold: 1})); err != nil {
		t.Fatal(err)
	}
	e.Start()
	a := e.actor(1)

	codes := make(chan Code, 2)
	hold := func() { codes <- e.CreateHold(1, 1, nil).Code }
	go hold()
	<-j.entered // the actor is stuck submitting the first hold's batch
	go hold()
	for len(a.inbox) < cap(a.inbox) {
		time.Sleep(time.Millisecond)
	}
	if r := e.CreateHold(1, 1, nil); r.Code != CodeOverloaded {
		t.Fatalf("hold with a full inbox = %s, want overloaded", r.Code)
	}
	close(j.gate)
	for i := 0; i < 2; i++ {
		if c := <-codes; c != OK {
			t.Fatalf("a queued hold answered %s", c)
		}
	}
	e.Stop()
}

func TestInvariantViolationPanics(t *testing.T) {
	defer func() {
		if p := recover(); p == nil || !strings.Contains(p.(string), "invariant") {
			t.Fatalf("recover() = %v", p)
		}
	}()
	counts{total: 5, available: 3, reserved: 1, sold: 0}.check(1)
}

func TestReplayRejectsImpossibleRecords(t *testing.T) {
	e := New(testConfig(NewFakeClock(testEpoch), &MemJournal{}))
	hold := appendRecord(nil, &record{kind: recHoldCreated, product: 1, qty: 1, deadline: 1})
	if err := e.Replay(hold); err == nil || !strings.Contains(err.Error(), "unknown product") {
		t.Fatalf("hold for unknown product: %v", err)
	}
	if err := e.Replay(appendRecord(nil, &record{kind: recProductCreated, product: 1, name: "x", qty: 1, maxPerHold: 5})); err != nil {
		t.Fatal(err)
	}
	tooMany := appendRecord(nil, &record{kind: recHoldCreated, product: 1, qty: 2, deadline: 1})
	if err := e.Replay(tooMany); err == nil || !strings.Contains(err.Error(), "does not apply") {
		t.Fatalf("hold above stock: %v", err)
	}
	if err := e.Replay([]byte{99}); err == nil {
		t.Fatal("unknown kind accepted")
	}
}

// TestCommandAfterActorExitIsRefused: a request that passed the stopping
// check just before Stop, and reaches the inbox after the actor's last
// drain, is answered instead of waiting forever.
func TestCommandAfterActorExitIsRefused(t *testing.T) {
	te := newTestEngine(t, widget)
	a := te.actor(1)
	te.Stop()
	c := getCommand(cmdHold)
	c.qty = 1
	done := make(chan Code, 1)
	go func() { a.call(c); done <- c.code }()
	select {
	case code := <-done:
		if code != CodeShuttingDown {
			t.Fatalf("code %s, want shutting_down", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a command sent after the actor exited was never answered")
	}
}
