package engine

import (
	"fmt"
	"testing"
	"time"
)

// busyEngine builds state of every kind: active, ordered and expired holds,
// pending, paid and cancelled orders, keyed answers and a queued webhook.
func busyEngine(t *testing.T) *testEngine {
	te := newTestEngine(t, widget, ProductSpec{ID: 2, Name: "Two", PriceCents: 3, TotalStock: 20, MaxPerHold: 5})
	te.mustHold(1, 2)
	te.mustHold(2, 1)
	te.advance(3 * time.Minute) // both expire
	te.CreateHold(1, 1, []byte("hk"))
	te.mustHold(1, 4)
	te.mustHold(1, 4)
	if r := te.CreateHold(1, 4, []byte("hk-409")); r.Code != CodeInsufficientStock {
		t.Fatalf("keyed hold = %s, want a 409 to remember", r.Code)
	}
	paid := te.mustOrder(te.mustHold(2, 2).Token)
	pay(te, "ok", paid.ID, true, "")
	cancelled := te.mustOrder(te.mustHold(2, 3).Token)
	pay(te, "no", cancelled.ID, false, "card_declined")
	pay(te, "early", te.lastOrderID.Load()+1, true, "")
	return te
}

func loadInto(t *testing.T, te *testEngine, snap []byte, tail [][]byte) *Engine {
	t.Helper()
	next := New(te.cfg)
	if err := next.LoadSnapshot(snap); err != nil {
		t.Fatalf("LoadSnapshot: %v", err)
	}
	for i, rec := range tail {
		if err := next.Replay(rec); err != nil {
			t.Fatalf("replay of tail record %d: %v", i, err)
		}
	}
	return next
}

func TestSnapshotRoundTrip(t *testing.T) {
	te := busyEngine(t)
	te.Stop()
	snap := te.AppendSnapshot(nil, te.clock.Now())
	next := loadInto(t, te, snap, nil)
	now := te.clock.Now()
	if got, want := dumpState(next, now), dumpState(te.Engine, now); got != want {
		t.Fatalf("state after snapshot differs:\n got: %s\nwant: %s", got, want)
	}
	again := next.AppendSnapshot(nil, now)
	if string(again) != string(snap) {
		t.Fatal("a loaded snapshot does not re-encode to the same bytes")
	}
}

// TestSnapshotThenTailEqualsFullReplay takes a snapshot of a running engine
// (Pause), goes on working, and checks that snapshot + the records after it
// rebuild exactly the state a full replay does.
func TestSnapshotThenTailEqualsFullReplay(t *testing.T) {
	te := busyEngine(t)
	resume, err := te.Pause()
	if err != nil {
		t.Fatal(err)
	}
	snap := te.AppendSnapshot(nil, te.clock.Now())
	covered := te.journal.Len()
	resume()

	h := te.mustHold(2, 2)
	o := te.mustOrder(h.Token) // consumes the queued "early" webhook
	if o.Status != OrderPaid {
		t.Fatalf("queued webhook not applied after the snapshot: %+v", o)
	}
	te.CreateHold(1, 1, []byte("hk")) // a replay
	te.advance(20 * time.Minute)      // order timeouts
	te.Stop()

	next := loadInto(t, te, snap, te.journal.Records()[covered:])
	now := te.clock.Now()
	if got, want := dumpState(next, now), dumpState(te.Engine, now); got != want {
		t.Fatalf("snapshot + tail differs from the live state:\n got: %s\nwant: %s", got, want)
	}
	next.Start()
	defer next.Stop()
	if r := next.CreateHold(1, 1, []byte("hk")); !r.Replayed {
		t.Fatalf("key answer lost across the snapshot: %+v", r)
	}
}

func TestPauseUnderLoad(t *testing.T) {
	te := newTestEngine(t, ProductSpec{ID: 1, Name: "L", PriceCents: 1, TotalStock: 1 << 30, MaxPerHold: 1})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				te.CreateHold(1, 1, nil)
			}
		}
	}()
	for i := 0; i < 20; i++ {
		resume, err := te.Pause()
		if err != nil {
			t.Fatal(err)
		}
		n := te.journal.Len()
		snap := te.AppendSnapshot(nil, te.clock.Now())
		if te.journal.Len() != n {
			t.Fatal("records were written while paused")
		}
		resume()
		next := New(te.cfg)
		if err := next.LoadSnapshot(snap); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	<-done
}

func TestSnapshotDropsOldExpiredHolds(t *testing.T) {
	te := newTestEngine(t, widget)
	old := te.mustHold(1, 1)
	te.advance(te.cfg.ExpiredHoldRetention / 2)
	recent := te.mustHold(1, 1)
	te.advance(te.cfg.ExpiredHoldRetention/2 + 5*time.Minute)
	te.Stop()
	next := loadInto(t, te, te.AppendSnapshot(nil, te.clock.Now()), nil)
	next.Start()
	defer next.Stop()
	if _, code := next.GetHold(old.Token); code != CodeHoldNotFound {
		t.Fatalf("hold expired past retention: %s, want dropped", code)
	}
	if h, code := next.GetHold(recent.Token); code != OK || h.Status != HoldExpired {
		t.Fatalf("recently expired hold: %+v %s", h, code)
	}
}

func TestLoadSnapshotRefusesDamage(t *testing.T) {
	te := busyEngine(t)
	te.Stop()
	snap := te.AppendSnapshot(nil, te.clock.Now())
	for cut := 0; cut < len(snap); cut++ {
		if err := New(te.cfg).LoadSnapshot(snap[:cut]); err == nil {
			t.Fatalf("snapshot cut at %d/%d loaded", cut, len(snap))
		}
	}
	bad := append([]byte(nil), snap...)
	bad[0] = 9
	if err := New(te.cfg).LoadSnapshot(bad); err == nil {
		t.Fatal("unknown version loaded")
	}
	loaded := New(te.cfg)
	if err := loaded.LoadSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	if err := loaded.LoadSnapshot(snap); err == nil {
		t.Fatal("a second snapshot loaded on top of state")
	}
}

// FuzzLoadSnapshot: no input panics or hangs the loader; what loads keeps
// the stock invariant.
func FuzzLoadSnapshot(f *testing.F) {
	cfg := testConfig(NewFakeClock(testEpoch), &MemJournal{})
	e := New(cfg)
	e.Start()
	e.Seed([]ProductSpec{widget})
	h := e.CreateHold(1, 2, []byte("k"))
	e.CreateOrder(h.Hold.Token)
	e.ApplyPayment(Payment{OrderID: 9, Success: true}, []byte("w"))
	e.Stop()
	f.Add(e.AppendSnapshot(nil, testEpoch))
	f.Add([]byte{snapshotVersion, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		e := New(cfg)
		if err := e.LoadSnapshot(data); err != nil {
			return
		}
		if err := e.CheckInvariant(); err != nil {
			t.Fatal(fmt.Errorf("loaded snapshot breaks the invariant: %w", err))
		}
	})
}
