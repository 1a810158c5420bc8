package engine

import (
	"strings"
	"testing"
	"time"
)

var widget = ProductSpec{ID: 1, Name: "Widget", PriceCents: 250, TotalStock: 10, MaxPerHold: 4}

func TestHoldReservesUnits(t *testing.T) {
	te := newTestEngine(t, widget)
	h := te.mustHold(1, 3)
	if h.ProductID != 1 || h.Qty != 3 || h.Status != HoldActive || !h.ExpiresAt.Equal(testEpoch.Add(2*time.Minute)) {
		t.Fatalf("hold = %+v", h)
	}
	p := te.product(1)
	if p.Available != 7 || p.Reserved != 3 || p.Sold != 0 {
		t.Fatalf("product after hold = %+v", p)
	}
}

func TestHoldRefusals(t *testing.T) {
	te := newTestEngine(t, widget)
	cases := []struct {
		name    string
		product uint64
		qty     int64
		want    Code
	}{
		{"unknown product", 99, 1, CodeProductNotFound},
		{"zero qty", 1, 0, CodeInvalidArgument},
		{"negative qty", 1, -1, CodeInvalidArgument},
		{"above max_per_hold", 1, 5, CodeQtyAboveMax},
	}
	for _, c := range cases {
		if r := te.CreateHold(c.product, c.qty, nil); r.Code != c.want {
			t.Errorf("%s: code %s, want %s", c.name, r.Code, c.want)
		}
	}
	if p := te.product(1); p.Available != 10 {
		t.Fatalf("refused holds changed stock: %+v", p)
	}
	if n := te.journal.Len(); n != 1 { // the product's creation only
		t.Fatalf("refused holds wrote %d records", n-1)
	}
}

func TestHoldInsufficientStockReportsAvailable(t *testing.T) {
	te := newTestEngine(t, widget)
	te.mustHold(1, 4)
	te.mustHold(1, 4)
	r := te.CreateHold(1, 3, nil)
	if r.Code != CodeInsufficientStock || r.Available != 2 {
		t.Fatalf("reply = %+v, want insufficient_stock with 2 available", r)
	}
}

func TestHoldExpiresAndReturnsUnits(t *testing.T) {
	te := newTestEngine(t, widget)
	h := te.mustHold(1, 2)
	te.advance(2*time.Minute - time.Millisecond)
	if p := te.product(1); p.Reserved != 2 {
		t.Fatalf("hold released early: %+v", p)
	}
	te.advance(time.Millisecond)
	if p := te.product(1); p.Available != 10 || p.Reserved != 0 {
		t.Fatalf("expired hold still counts: %+v", p)
	}
	got, code := te.GetHold(h.Token)
	if code != OK || got.Status != HoldExpired {
		t.Fatalf("GetHold = %+v %s", got, code)
	}
	if r := te.CreateOrder(h.Token); r.Code != CodeHoldExpired {
		t.Fatalf("order of expired hold = %s", r.Code)
	}
	if te.Stats().HoldsExpired.Load() != 1 {
		t.Fatalf("HoldsExpired = %d", te.Stats().HoldsExpired.Load())
	}
}

func TestOrderOfHoldPastExpiryBeforeTimerRuns(t *testing.T) {
	te := newTestEngine(t, widget)
	h := te.mustHold(1, 2)
	te.clock.Advance(3 * time.Minute) // no settle: the order races the timer
	if r := te.CreateOrder(h.Token); r.Code != CodeHoldExpired {
		t.Fatalf("order = %s, want hold_expired", r.Code)
	}
	if p := te.product(1); p.Available != 10 {
		t.Fatalf("units not returned: %+v", p)
	}
}

func TestHoldTokensAreDistinctAndParse(t *testing.T) {
	te := newTestEngine(t, ProductSpec{ID: 7, Name: "Many", PriceCents: 1, TotalStock: 1000, MaxPerHold: 1})
	seen := map[HoldToken]bool{}
	for i := 0; i < 500; i++ {
		h := te.mustHold(7, 1)
		if seen[h.Token] {
			t.Fatalf("token %s issued twice", h.Token)
		}
		seen[h.Token] = true
		back, ok := ParseHoldToken([]byte(h.Token.String()))
		if !ok || back != h.Token {
			t.Fatalf("token %s does not round-trip", h.Token)
		}
	}
}

func TestParseHoldTokenRejects(t *testing.T) {
	good := HoldToken{ProductID: 12, Seq: 34, Secret: [16]byte{1, 2, 3, 0xab}}.String()
	secretHex := good[len(good)-32:]
	bad := []string{
		"", "12", "12_34", "12_34_", "_34_" + secretHex, "12__" + secretHex, "012_34_" + secretHex,
		"12_034_" + secretHex, "x2_34_" + secretHex, "0_34_" + secretHex, "12_34_56_" + secretHex,
		good[:len(good)-1], good + "0", strings.Replace(good, "ab", "AB", 1), "12_34_" + "G" + secretHex[1:],
		"99999999999999999999_1_" + secretHex, "12_18446744073709551616_" + secretHex, "+12_34_" + secretHex,
	}
	for _, s := range bad {
		if _, ok := ParseHoldToken([]byte(s)); ok {
			t.Errorf("ParseHoldToken(%q) accepted", s)
		}
	}
	if _, ok := ParseHoldToken([]byte(good)); !ok {
		t.Fatalf("ParseHoldToken(%q) refused", good)
	}
}

func TestHoldIdempotencyKey(t *testing.T) {
	te := newTestEngine(t, widget)
	first := te.CreateHold(1, 2, []byte("k-1"))
	again := te.CreateHold(1, 2, []byte("k-1"))
	if first.Code != OK || again.Code != OK || !again.Replayed || first.Replayed {
		t.Fatalf("first=%+v again=%+v", first, again)
	}
	if again.Hold != first.Hold {
		t.Fatalf("replay answered a different hold: %+v vs %+v", again.Hold, first.Hold)
	}
	if p := te.product(1); p.Reserved != 2 {
		t.Fatalf("replay reserved again: %+v", p)
	}
	if r := te.CreateHold(1, 3, []byte("k-1")); r.Code != CodeKeyReused {
		t.Fatalf("different body under the key = %s", r.Code)
	}
}

func TestHoldKeyReplaysRefusalAfterStockReturns(t *testing.T) {
	te := newTestEngine(t, widget)
	h := te.mustHold(1, 4)
	te.mustHold(1, 4)
	first := te.CreateHold(1, 4, []byte("late"))
	if first.Code != CodeInsufficientStock || first.Available != 2 {
		t.Fatalf("first = %+v", first)
	}
	te.advance(3 * time.Minute) // both holds expire: stock is back
	_ = h
	again := te.CreateHold(1, 4, []byte("late"))
	if again.Code != CodeInsufficientStock || again.Available != 2 || !again.Replayed {
		t.Fatalf("replay = %+v, want the first 409 again", again)
	}
	te.restart()
	after := te.CreateHold(1, 4, []byte("late"))
	if after.Code != CodeInsufficientStock || after.Available != 2 || !after.Replayed {
		t.Fatalf("replay after restart = %+v", after)
	}
}

func TestHoldKeyRefusedForValidationIsNotRemembered(t *testing.T) {
	te := newTestEngine(t, widget)
	if r := te.CreateHold(1, 9, []byte("v")); r.Code != CodeQtyAboveMax {
		t.Fatalf("code %s", r.Code)
	}
	if r := te.CreateHold(1, 1, []byte("v")); r.Code != OK || r.Replayed {
		t.Fatalf("the key was burnt by an invalid request: %+v", r)
	}
}

func TestKeysForgottenAfterRetention(t *testing.T) {
	te := newTestEngine(t, widget)
	te.CreateHold(1, 1, []byte("old"))
	te.sweep(te.clock.Now().Add(te.cfg.IdempotencyKeyTTL - time.Second))
	if r := te.CreateHold(1, 2, []byte("old")); r.Code != CodeKeyReused {
		t.Fatalf("key forgotten before its retention: %s", r.Code)
	}
	// Keys go by generation: kept at least the TTL, at most TTL/8 more.
	te.advance(te.cfg.IdempotencyKeyTTL + te.cfg.IdempotencyKeyTTL/keyGenerations + time.Second)
	te.sweep(te.clock.Now())
	if r := te.CreateHold(1, 2, []byte("old")); r.Code != OK || r.Replayed {
		t.Fatalf("key remembered past its retention: %+v", r)
	}
}

func TestKeyTableFull(t *testing.T) {
	clock := NewFakeClock(testEpoch)
	j := &MemJournal{}
	cfg := testConfig(clock, j)
	cfg.IdempotencyKeyBytesMax = 1 // the first answer uses it up
	e := New(cfg)
	e.Start()
	defer e.Stop()
	e.Seed([]ProductSpec{widget})
	if r := e.CreateHold(1, 1, []byte("a")); r.Code != OK {
		t.Fatalf("key a: %s", r.Code)
	}
	if r := e.CreateHold(1, 1, []byte("c")); r.Code != CodeKeyTableFull {
		t.Fatalf("second key = %s, want key table full", r.Code)
	}
	if r := e.CreateHold(1, 1, []byte("a")); !r.Replayed {
		t.Fatalf("known key not replayed when full: %+v", r)
	}
}
