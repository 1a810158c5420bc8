package engine

import "testing"

// A webhook for an order id more than OrderIDAheadMax beyond the highest id
// handed out is CodeOrderNotFound: not queued, nothing logged, the key not
// remembered (the same key is processed afresh once the id is in range).
// At exactly OrderIDAheadMax beyond it is queued. The bound moves with the
// highest id, also after a restart.
func TestWebhookFarAheadOfOrderIDsIsNotQueued(t *testing.T) {
	te := newTestEngine(t, widget)
	o := te.mustOrder(te.mustHold(1, 1).Token)
	if te.HighestOrderID() != o.ID {
		t.Fatalf("HighestOrderID = %d, want %d", te.HighestOrderID(), o.ID)
	}
	records := len(te.journal.Records())
	far := o.ID + OrderIDAheadMax + 1
	if r := pay(te, "far", far, true, ""); r.Code != CodeOrderNotFound || r.Queued {
		t.Fatalf("webhook for highest+%d = %+v, want CodeOrderNotFound", OrderIDAheadMax+1, r)
	}
	if n := len(te.journal.Records()); n != records {
		t.Fatalf("the refused webhook logged %d records", n-records)
	}
	if q := te.Stats().WebhooksQueued.Load(); q != 0 || te.orders.queuedCount.Load() != 0 {
		t.Fatalf("queued %d (count %d), want 0", q, te.orders.queuedCount.Load())
	}
	edge := o.ID + OrderIDAheadMax
	if r := pay(te, "edge", edge, true, ""); r.Code != OK || !r.Queued {
		t.Fatalf("webhook for highest+%d = %+v, want queued", OrderIDAheadMax, r)
	}
	// One more order raises the bound: the far id is now exactly at it,
	// and the key that was refused before is taken as new.
	o2 := te.mustOrder(te.mustHold(1, 1).Token)
	if o2.ID != o.ID+1 {
		t.Fatalf("second order id %d", o2.ID)
	}
	if r := pay(te, "far", far, true, ""); r.Code != OK || !r.Queued || r.Replayed {
		t.Fatalf("webhook for the new highest+%d = %+v, want queued afresh", OrderIDAheadMax, r)
	}
	te.restart()
	if r := pay(te, "far2", far+1, true, ""); r.Code != CodeOrderNotFound {
		t.Fatalf("after restart, highest+%d = %+v, want CodeOrderNotFound", OrderIDAheadMax+1, r)
	}
}

// In a partition's engine the bound counts from that partition's highest
// id (its residue class), not from a global one.
func TestOrderIDAheadBoundIsPerPartition(t *testing.T) {
	clock := NewFakeClock(testEpoch)
	cfg := testConfig(clock, &MemJournal{})
	cfg.IDStride, cfg.IDResidue = 3, 2
	e := New(cfg)
	e.Start()
	defer e.Stop()
	if _, err := e.Seed([]ProductSpec{{ID: 2, Name: "p", TotalStock: 10, MaxPerHold: 1}}); err != nil {
		t.Fatal(err)
	}
	h := e.CreateHold(2, 1, nil)
	o := e.CreateOrder(h.Hold.Token)
	if o.Code != OK || o.Order.ID != 2 || e.HighestOrderID() != 2 {
		t.Fatalf("order %+v, highest %d; want id 2", o, e.HighestOrderID())
	}
	// 2 + 999,999 = 1,000,001 is in residue 2 mod 3 and within the bound;
	// 1,000,004 is the next id of the class, beyond it.
	if r := e.ApplyPayment(Payment{OrderID: 2 + 999_999, Success: true}, []byte("in")); r.Code != OK || !r.Queued {
		t.Fatalf("within the bound: %+v", r)
	}
	if r := e.ApplyPayment(Payment{OrderID: 2 + OrderIDAheadMax + 2, Success: true}, []byte("out")); r.Code != CodeOrderNotFound {
		t.Fatalf("beyond the bound: %+v", r)
	}
}
