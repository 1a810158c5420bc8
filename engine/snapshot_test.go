package engine

import (
	"bytes"
	"fmt"
	"sync"
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

// TestSnapshotWhileWorking: snapshots are taken (Pause, CaptureSnapshot,
// resume) while goroutines create keyed holds, orders and payments, and
// each is encoded only later, after more work changed the state it was
// taken from (idempotency keys landing in the very generations it reads).
// Every snapshot plus the records logged after its pause rebuilds exactly
// the final state: what was done during a snapshot is in it or in the log
// after it, never lost and never applied twice. Under -race it also
// proves that encoding reads nothing the engine writes.
func TestSnapshotWhileWorking(t *testing.T) {
	te := newTestEngine(t, ProductSpec{ID: 1, Name: "A", PriceCents: 5, TotalStock: 1 << 30, MaxPerHold: 3},
		ProductSpec{ID: 2, Name: "B", PriceCents: 7, TotalStock: 1 << 30, MaxPerHold: 3})
	const workers, opsPerWorkerMax, snapshots = 4, 20_000, 8
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range opsPerWorkerMax {
				select {
				case <-stop:
					return
				default:
				}
				key := []byte(fmt.Sprintf("w%d-%d", w, i))
				r := te.CreateHold(uint64(1+i%2), int64(1+i%3), key)
				if r.Code != OK {
					t.Errorf("hold: %s", r.Code)
					return
				}
				if i%3 == 0 {
					o := te.CreateOrder(r.Hold.Token)
					if o.Code != OK {
						t.Errorf("order: %s", o.Code)
						return
					}
					p := te.ApplyPayment(Payment{OrderID: o.Order.ID, Success: i%2 == 0}, []byte("pay-"+string(key)))
					if p.Code != OK {
						t.Errorf("payment: %s", p.Code)
						return
					}
				}
				if i%50 == 0 { // a replay of an answer given before
					if again := te.CreateHold(uint64(1+i%2), int64(1+i%3), key); !again.Replayed {
						t.Errorf("key %s not replayed: %+v", key, again)
						return
					}
				}
			}
		}()
	}
	type taken struct {
		view    *SnapshotView
		covered int
		atPause []byte // the state encoded while still paused
		encoded chan []byte
	}
	// progress waits until the workers logged 100 more records (at most 10 s).
	progress := func() {
		t.Helper()
		from, deadline := te.journal.Len(), time.Now().Add(10*time.Second)
		for te.journal.Len() < from+100 {
			if time.Now().After(deadline) {
				t.Fatal("the workers made no progress")
			}
			time.Sleep(time.Millisecond)
		}
	}
	var views []*taken
	for i := range snapshots {
		progress()
		resume, err := te.Pause()
		if err != nil {
			t.Fatal(err)
		}
		now := te.clock.Now()
		v := &taken{view: te.CaptureSnapshot(now), covered: te.journal.Len(), atPause: te.AppendSnapshot(nil, now),
			encoded: make(chan []byte, 1)}
		resume()
		views = append(views, v)
		if i%2 == 0 { // encoded while the workers go on
			go func() { v.encoded <- v.view.AppendTo(nil) }()
		}
	}
	progress() // work after the last snapshot too
	close(stop)
	wg.Wait()
	te.Stop()
	now := te.clock.Now()
	want := dumpState(te.Engine, now)
	for i, v := range views {
		var snap []byte
		if i%2 == 0 {
			snap = <-v.encoded
		} else {
			snap = v.view.AppendTo(nil)
		}
		if !bytes.Equal(snap, v.atPause) {
			t.Fatalf("snapshot %d encoded after the pause differs from the state at the pause: the view saw later work", i)
		}
		next := loadInto(t, te, snap, te.journal.Records()[v.covered:])
		if got := dumpState(next, now); got != want {
			t.Fatalf("snapshot %d (covering %d of %d records) + the log after it differs from the live state:\n got: %s\nwant: %s",
				i, v.covered, te.journal.Len(), got, want)
		}
	}
}
