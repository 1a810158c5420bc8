package engine

import (
	"testing"
	"time"
)

// TestOrdersPendingAfterSnapshotRestart checks that the pending-orders gauge
// is the number of pending orders after a restart from a snapshot, whose
// counts since start begin again at zero: a gauge derived from them (created
// − paid − cancelled − timed out) would read 0 right after the restart and
// go negative with the first payment.
func TestOrdersPendingAfterSnapshotRestart(t *testing.T) {
	te := newTestEngine(t, widget, ProductSpec{ID: 2, Name: "Two", PriceCents: 3, TotalStock: 20, MaxPerHold: 5})
	var pending []Order
	for i := 0; i < 4; i++ {
		pending = append(pending, te.mustOrder(te.mustHold(2, 1).Token))
	}
	pay(te, "paid", pending[0].ID, true, "")
	pay(te, "declined", pending[1].ID, false, "card_declined")
	te.mustHold(1, 1) // a hold without an order counts for nothing
	if got := te.Stats().OrdersPending.Load(); got != 2 {
		t.Fatalf("live OrdersPending = %d, want 2", got)
	}
	resume, err := te.Pause()
	if err != nil {
		t.Fatal(err)
	}
	snap := te.AppendSnapshot(nil, te.clock.Now())
	covered := te.journal.Len()
	resume()
	third := te.mustOrder(te.mustHold(2, 1).Token) // in the tail after the snapshot
	te.Stop()

	next := loadInto(t, te, snap, te.journal.Records()[covered:])
	next.Start()
	defer next.Stop()
	st := next.Stats()
	if got := st.OrdersPending.Load(); got != 3 {
		t.Fatalf("OrdersPending after snapshot + tail = %d, want 3 (created since start: %d)", got, st.OrdersCreated.Load())
	}
	if r := next.ApplyPayment(Payment{OrderID: pending[2].ID, Success: true}, []byte("after-1")); r.Code != OK || !r.Applied {
		t.Fatalf("payment after restart: %+v", r)
	}
	if r := next.ApplyPayment(Payment{OrderID: third.ID, Success: false}, []byte("after-2")); r.Code != OK || !r.Applied {
		t.Fatalf("decline after restart: %+v", r)
	}
	if got := st.OrdersPending.Load(); got != 1 {
		t.Fatalf("OrdersPending after a payment and a decline = %d, want 1", got)
	}
	// The payment timeout ends the last one.
	te.clock.Advance(te.cfg.OrderTTL + time.Minute)
	deadline := time.Now().Add(5 * time.Second)
	for st.OrdersPending.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := st.OrdersPending.Load(); got != 0 {
		t.Fatalf("OrdersPending after the payment timeout = %d, want 0", got)
	}
	if o, code := next.GetOrder(pending[3].ID); code != OK || o.Status != OrderCancelled {
		t.Fatalf("order %d after its timeout: %+v %s", pending[3].ID, o, code)
	}
}
