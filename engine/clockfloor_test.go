package engine

import (
	"testing"
	"time"
)

// A clock stepped back must not hand out timestamps before those already
// used: a hold made after the step expires no earlier than one made before
// it, and a replica (or restarted engine) keeps the floor of its log.
func TestClockSteppedBackDoesNotGoBackInTime(t *testing.T) {
	te := newTestEngine(t, ProductSpec{ID: 1, Name: "p", PriceCents: 1, TotalStock: 10, MaxPerHold: 5})
	first := te.mustHold(1, 1)
	te.clock.Advance(-time.Hour)
	second := te.mustHold(1, 1)
	if second.ExpiresAt.Before(first.ExpiresAt) {
		t.Fatalf("a hold made after the clock stepped back expires at %v, before the earlier hold's %v",
			second.ExpiresAt, first.ExpiresAt)
	}
	te.restart()
	third := te.mustHold(1, 1)
	if third.ExpiresAt.Before(second.ExpiresAt) {
		t.Fatalf("after a restart on the slow clock, a new hold expires at %v, before %v", third.ExpiresAt, second.ExpiresAt)
	}
}

// A snapshot keeps the floor too: an engine restored from one, on a clock
// that is behind, does not time its records before the snapshot's.
func TestClockFloorSurvivesSnapshot(t *testing.T) {
	te := newTestEngine(t, ProductSpec{ID: 1, Name: "p", PriceCents: 1, TotalStock: 10, MaxPerHold: 5})
	h := te.mustHold(1, 1)
	o := te.mustOrder(h.Token)
	te.Stop()
	snap := te.AppendSnapshot(nil, te.clock.Now())
	slow := NewFakeClock(testEpoch.Add(-time.Hour))
	cfg := testConfig(slow, &MemJournal{})
	next := New(cfg)
	if err := next.LoadSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	next.Start()
	defer next.Stop()
	r := next.CreateHold(1, 1, nil)
	if r.Code != OK {
		t.Fatalf("hold after restore: %s", r.Code)
	}
	if floor := o.UpdatedAt.Add(next.cfg.HoldTTL); r.Hold.ExpiresAt.Before(floor) {
		t.Fatalf("a hold made on the slow clock after the restore expires at %v, before %v (the snapshot's latest time + the TTL)", r.Hold.ExpiresAt, floor)
	}
}
