package engine

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestKeyClaimEndedTwicePanics: a claim is ended once; a second end would
// put it on the free list twice, so it panics instead.
func TestKeyClaimEndedTwicePanics(t *testing.T) {
	var st Stats
	kt := newKeyTable(int64(time.Hour), newKeyBudget(1<<20, &st, nil))
	c, _, o := kt.begin([]byte("once"), 1, testEpoch.UnixNano())
	if o != keyFresh {
		t.Fatalf("outcome %d", o)
	}
	kt.finish(c)
	defer func() {
		if recover() == nil {
			t.Fatal("a second end did not panic")
		}
	}()
	kt.abort(c)
}

// sameShardKeys returns n distinct keys that all fall in one shard of kt,
// so that their claims share one index and one free list.
func sameShardKeys(kt *keyTable, prefix string, n int) [][]byte {
	var keys [][]byte
	want, _ := kt.locate([]byte(prefix + "0"))
	for i := 0; len(keys) < n; i++ {
		k := []byte(fmt.Sprintf("%s%d", prefix, i))
		if s, _ := kt.locate(k); s == want {
			keys = append(keys, k)
		}
	}
	return keys
}

var errAbortForTest = errors.New("test: abort this claim")

// TestKeyClaimsReusedUnderDuplicates: round after round, several keys of
// one shard are sent by many goroutines at once, so that duplicates wait
// while the first is in flight; every fifth first request panics before
// reaching the actor (its claim is aborted and a waiter runs afresh). The
// claims are reused all along, from one free list. Every delivery of a key
// must get one answer: its first durable one, for that key's quantity, with
// exactly one delivery not a replay; and replay must rebuild the same keys.
func TestKeyClaimsReusedUnderDuplicates(t *testing.T) {
	const rounds, keysPerRound, deliveries = 60, 4, 8
	te := newTestEngine(t, ProductSpec{ID: 1, Name: "Deep", PriceCents: 1, TotalStock: StockMax, MaxPerHold: keysPerRound})
	keys := sameShardKeys(te.holdKeys, "dup-", rounds*keysPerRound)
	var claimed atomic.Int64
	te.keyHook = func(s keyStage) {
		if s != keyClaimed {
			return
		}
		if claimed.Add(1)%5 == 0 {
			panic(errAbortForTest)
		}
		runtime.Gosched() // let duplicates find the claim and wait
	}
	hold := func(qty int64, key []byte) (r HoldReply) {
		for {
			aborted := func() (aborted bool) {
				defer func() {
					if v := recover(); v != nil {
						if v != errAbortForTest {
							panic(v)
						}
						aborted = true
					}
				}()
				r = te.CreateHold(1, qty, key)
				return false
			}()
			if !aborted && r.Code != CodeOverloaded {
				return r
			}
		}
	}
	for round := 0; round < rounds; round++ {
		replies := make([][]HoldReply, keysPerRound)
		var wg sync.WaitGroup
		for k := range replies {
			replies[k] = make([]HoldReply, deliveries)
			key := keys[round*keysPerRound+k]
			for d := range replies[k] {
				wg.Add(1)
				go func() {
					defer wg.Done()
					replies[k][d] = hold(int64(1+k), key)
				}()
			}
		}
		wg.Wait()
		for k, rs := range replies {
			fresh := 0
			for _, r := range rs {
				if r.Code != OK || r.Hold.Qty != int64(1+k) || r.Hold.Token != rs[0].Hold.Token {
					t.Fatalf("round %d key %d: reply %+v, first %+v", round, k, r, rs[0])
				}
				if !r.Replayed {
					fresh++
				}
			}
			if fresh != 1 {
				t.Fatalf("round %d key %d: %d fresh answers, want 1", round, k, fresh)
			}
		}
	}
	te.keyHook = nil
	s, _ := te.holdKeys.locate(keys[0])
	s.mu.Lock()
	open, free := len(s.claims), s.nfree
	s.mu.Unlock()
	if open != 0 || free == 0 || free > keyClaimsFreeMax {
		t.Fatalf("after the rounds: %d claims open, %d on the free list", open, free)
	}
	// Every key still replays its own answer, and replay rebuilds them.
	for i, key := range keys {
		if r := te.CreateHold(1, int64(1+i%keysPerRound), key); r.Code != OK || !r.Replayed {
			t.Fatalf("key %s: %+v", key, r)
		}
	}
	te.restart()
}

// TestFreshKeysAllocateNothing: a hold or a webhook under a key never seen
// allocates nothing in steady state. The key's claim comes from its shard's
// free list and the answer goes into the arena, whose chunks and index grow
// by doubling: amortised to zero per request.
func TestFreshKeysAllocateNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	cfg := DefaultConfig()
	cfg.Journal = &discardJournal{}
	cfg.OrderTTL = 0
	e := New(cfg)
	e.Start()
	t.Cleanup(e.Stop)
	if _, err := e.Seed([]ProductSpec{{ID: 1, Name: "Deep", PriceCents: 1, TotalStock: StockMax, MaxPerHold: 1}}); err != nil {
		t.Fatal(err)
	}
	h := e.CreateHold(1, 1, nil)
	o := e.CreateOrder(h.Hold.Token)
	if o.Code != OK {
		t.Fatal(o.Code)
	}
	const warm, runs = 5000, 2000
	for _, c := range []struct {
		name string
		do   func(key []byte) bool
	}{
		{"hold", func(key []byte) bool { return e.CreateHold(1, 1, key).Code == OK }},
		{"webhook", func(key []byte) bool {
			return e.ApplyPayment(Payment{OrderID: o.Order.ID, Success: true}, key).Code == OK
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := make([]byte, 0, 40)
			n := uint64(0)
			var bad int
			next := func() {
				n++
				key = appendKey(append(key[:0], c.name...), n)
				if !c.do(key) {
					bad++
				}
			}
			for i := 0; i < warm; i++ {
				next()
			}
			allocs := testing.AllocsPerRun(runs, next)
			if bad > 0 {
				t.Fatalf("%d requests failed", bad)
			}
			if allocs != 0 {
				t.Errorf("%.1f allocations per request under a fresh key, want 0", allocs)
			}
		})
	}
}
