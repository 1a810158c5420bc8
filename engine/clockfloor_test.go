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
