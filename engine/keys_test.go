package engine

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// TestKeyGenerationsExpireWhole: an answer is seen for at least the TTL and
// at most TTL/keyGenerations more; the sweep frees its generation whole and
// the gauges follow.
func TestKeyGenerationsExpireWhole(t *testing.T) {
	var st Stats
	ttl := int64(8 * time.Hour)
	kt := newKeyTable(ttl, newKeyBudget(1<<30, &st, nil))
	at := testEpoch.UnixNano()
	for i := 0; i < 100; i++ {
		kt.remember(fmt.Sprintf("key-%03d", i), at, holdRefusedAnswer(uint64(i), int64(i)))
	}
	if st.IdempotencyKeys.Load() != 100 || st.IdempotencyKeyBytes.Load() < 100*10 {
		t.Fatalf("gauges after 100 answers: keys=%d bytes=%d", st.IdempotencyKeys.Load(), st.IdempotencyKeyBytes.Load())
	}
	seen := func(now int64) bool {
		s, tag := kt.locate([]byte("key-042"))
		s.mu.Lock()
		defer s.mu.Unlock()
		a, ok := kt.lookupLocked(s, []byte("key-042"), tag, now)
		if ok && (a.fp != 42 || a.available != 42) {
			t.Fatalf("wrong answer %+v", a)
		}
		return ok
	}
	if !seen(at+ttl-1) || kt.sweep(at+ttl-1) != 0 {
		t.Fatal("an answer was forgotten before its TTL")
	}
	late := at + ttl + ttl/keyGenerations
	if seen(late) {
		t.Fatal("an answer was seen after TTL + one generation")
	}
	if n := kt.sweep(late); n != 100 {
		t.Fatalf("sweep dropped %d answers, want 100", n)
	}
	if st.IdempotencyKeys.Load() != 0 || st.IdempotencyKeyBytes.Load() != 0 {
		t.Fatalf("gauges after the sweep: keys=%d bytes=%d", st.IdempotencyKeys.Load(), st.IdempotencyKeyBytes.Load())
	}
}

// TestKeyBudgetHoldsUnderACrowd: after a sell-out, a crowd retrying under
// fresh keys fills the budget and is then refused (CodeKeyTableFull)
// without the table growing further, while earlier answers still replay;
// the 80 % warning fires once.
func TestKeyBudgetHoldsUnderACrowd(t *testing.T) {
	clock := NewFakeClock(testEpoch)
	cfg := testConfig(clock, &MemJournal{})
	cfg.IdempotencyKeyBytesMax = 256 << 10
	var warnings []int64
	var mu sync.Mutex
	cfg.OnKeyBudgetWarning = func(used, max int64) { mu.Lock(); warnings = append(warnings, used); mu.Unlock() }
	e := New(cfg)
	e.Start()
	defer e.Stop()
	e.Seed([]ProductSpec{{ID: 1, Name: "One", PriceCents: 1, TotalStock: 1, MaxPerHold: 1}})
	if r := e.CreateHold(1, 1, []byte("winner")); r.Code != OK {
		t.Fatalf("winner: %+v", r)
	}
	const workers = 8
	var refused sync.WaitGroup
	counts := make([]int, workers)
	for w := 0; w < workers; w++ {
		refused.Add(1)
		go func(w int) {
			defer refused.Done()
			for i := 0; i < 20000; i++ {
				r := e.CreateHold(1, 1, []byte(fmt.Sprintf("crowd-%d-%05d-xxxxxxxxxxxxxxxxxxxxxxx", w, i)))
				if r.Code == CodeKeyTableFull {
					counts[w]++
					if counts[w] > 100 {
						return
					}
				} else if r.Code != CodeInsufficientStock {
					t.Errorf("crowd answer %s", r.Code)
					return
				}
			}
		}(w)
	}
	refused.Wait()
	used := e.stats.IdempotencyKeyBytes.Load()
	// Past the budget by at most what the requests in flight when it ran
	// out added: each one record, and a new chunk or index doubling.
	if slack := int64(workers * 2 * keyChunkBytesMax); used < cfg.IdempotencyKeyBytesMax || used > cfg.IdempotencyKeyBytesMax+slack {
		t.Fatalf("key bytes %d, budget %d", used, cfg.IdempotencyKeyBytesMax)
	}
	keys := e.stats.IdempotencyKeys.Load()
	for i := 0; i < 1000; i++ {
		if r := e.CreateHold(1, 1, []byte(fmt.Sprintf("late-%d", i))); r.Code != CodeKeyTableFull {
			t.Fatalf("a new key at the limit got %s", r.Code)
		}
	}
	if e.stats.IdempotencyKeys.Load() != keys || e.stats.IdempotencyKeyBytes.Load() != used {
		t.Fatal("the table grew at the limit")
	}
	if r := e.CreateHold(1, 1, []byte("winner")); r.Code != OK || !r.Replayed {
		t.Fatalf("winner not replayed at the limit: %+v", r)
	}
	if r := e.CreateHold(1, 1, []byte("crowd-0-00000-xxxxxxxxxxxxxxxxxxxxxxx")); r.Code != CodeInsufficientStock || !r.Replayed {
		t.Fatalf("a 409 not replayed at the limit: %+v", r)
	}
	if e.stats.IdempotencyKeysRefused.Load() < 1000 {
		t.Fatalf("refusals counted: %d", e.stats.IdempotencyKeysRefused.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(warnings) != 1 || warnings[0] < cfg.IdempotencyKeyBytesMax/10*8 {
		t.Fatalf("warnings %v, want one at 80 %%", warnings)
	}
}

// TestKeyClaimEndsWhenTheRequestPanics: a panic after the key is claimed
// does not leave it claimed: before the actor saw the request, a retry runs
// afresh; after the answer was durable, a retry replays it.
func TestKeyClaimEndsWhenTheRequestPanics(t *testing.T) {
	te := newTestEngine(t, widget)
	panicAt := func(stage keyStage, f func()) {
		te.keyHook = func(s keyStage) {
			if s == stage {
				panic("injected")
			}
		}
		defer func() {
			te.keyHook = nil
			if recover() == nil {
				t.Fatal("the hook did not panic")
			}
		}()
		f()
	}
	within := func(what string, f func()) {
		done := make(chan struct{})
		go func() { defer close(done); f() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s hangs on a key left claimed", what)
		}
	}
	panicAt(keyClaimed, func() { te.CreateHold(1, 1, []byte("p1")) })
	within("hold p1", func() {
		if r := te.CreateHold(1, 1, []byte("p1")); r.Code != OK || r.Replayed {
			t.Errorf("retry after a panic before the actor: %+v", r)
		}
	})
	panicAt(keyAnswered, func() { te.CreateHold(1, 2, []byte("p2")) })
	within("hold p2", func() {
		if r := te.CreateHold(1, 2, []byte("p2")); r.Code != OK || !r.Replayed {
			t.Errorf("retry after a panic once durable: %+v", r)
		}
	})
	if p := te.product(1); p.Reserved != 3 {
		t.Fatalf("reserved %d, want 1 + 2 (each hold once)", p.Reserved)
	}
	o := te.mustOrder(te.mustHold(1, 1).Token)
	panicAt(keyClaimed, func() { te.ApplyPayment(Payment{OrderID: o.ID, Success: true}, []byte("w1")) })
	within("webhook w1", func() {
		if r := te.ApplyPayment(Payment{OrderID: o.ID, Success: true}, []byte("w1")); r.Code != OK || !r.Applied || r.Replayed {
			t.Errorf("webhook retry after a panic: %+v", r)
		}
	})
	panicAt(keyAnswered, func() { te.ApplyPayment(Payment{OrderID: o.ID, Success: true}, []byte("w2")) })
	within("webhook w2", func() {
		if r := te.ApplyPayment(Payment{OrderID: o.ID, Success: true}, []byte("w2")); r.Code != OK || !r.Replayed {
			t.Errorf("webhook replay after a panic: %+v", r)
		}
	})
	te.restart() // and no claim is left open (dumpState counts them)
}

// TestConcurrentRestocksStayWithinStockMax: the limit is checked by the
// actor, so of many concurrent restocks only those that fit pass.
func TestConcurrentRestocksStayWithinStockMax(t *testing.T) {
	te := newTestEngine(t, ProductSpec{ID: 1, Name: "Deep", PriceCents: 1, TotalStock: StockMax - 5, MaxPerHold: 1})
	var wg sync.WaitGroup
	codes := make([]Code, 16)
	for i := range codes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, codes[i] = te.Restock(1, 5)
		}(i)
	}
	wg.Wait()
	ok := 0
	for _, c := range codes {
		switch c {
		case OK:
			ok++
		case CodeInvalidArgument:
		default:
			t.Fatalf("restock answered %s", c)
		}
	}
	if p := te.product(1); ok != 1 || p.TotalStock != StockMax {
		t.Fatalf("%d restocks passed, total %d; want 1 and StockMax", ok, p.TotalStock)
	}
	if _, code := te.CreateProduct(ProductSpec{Name: "Too deep", TotalStock: StockMax + 1}); code != CodeInvalidArgument {
		t.Fatalf("a product above StockMax: %s", code)
	}
}

// TestNewRefusesTTLsAboveTTLMax: every TTL is bounded, so deadline
// arithmetic cannot overflow.
func TestNewRefusesTTLsAboveTTLMax(t *testing.T) {
	for _, set := range []func(*Config, time.Duration){
		func(c *Config, d time.Duration) { c.HoldTTL = d },
		func(c *Config, d time.Duration) { c.OrderTTL = d },
		func(c *Config, d time.Duration) { c.QueuedWebhookTTL = d },
		func(c *Config, d time.Duration) { c.IdempotencyKeyTTL = d },
		func(c *Config, d time.Duration) { c.ExpiredHoldRetention = d },
	} {
		cfg := testConfig(NewFakeClock(testEpoch), &MemJournal{})
		set(&cfg, TTLMax)
		New(cfg) // the bound itself is accepted
		set(&cfg, TTLMax+1)
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("a TTL above TTLMax was accepted")
				}
			}()
			New(cfg)
		}()
	}
}

// TestSnapshotVersion1StillLoads loads a snapshot written by the version 1
// encoder (busyEngine's state at testEpoch+3m) and checks its keys replay.
func TestSnapshotVersion1StillLoads(t *testing.T) {
	snap, err := os.ReadFile("testdata/snapshot-v1.bin")
	if err != nil {
		t.Fatal(err)
	}
	clock := NewFakeClock(testEpoch.Add(3 * time.Minute))
	cfg := testConfig(clock, &MemJournal{})
	e := New(cfg)
	if err := e.LoadSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	// Re-encoded as version 2 and loaded again, it is the same state.
	again := New(cfg)
	if err := again.LoadSnapshot(e.AppendSnapshot(nil, clock.Now())); err != nil {
		t.Fatal(err)
	}
	if got, want := dumpState(again, clock.Now()), dumpState(e, clock.Now()); got != want {
		t.Fatalf("v1 → v2 differs:\n got: %s\nwant: %s", got, want)
	}
	e.Start()
	defer e.Stop()
	if r := e.CreateHold(1, 1, []byte("hk")); r.Code != OK || !r.Replayed || r.Hold.Qty != 1 {
		t.Fatalf("hk: %+v", r)
	}
	if r := e.CreateHold(1, 4, []byte("hk-409")); r.Code != CodeInsufficientStock || !r.Replayed || r.Available != 1 {
		t.Fatalf("hk-409: %+v", r)
	}
	if r := e.CreateHold(1, 2, []byte("hk")); r.Code != CodeKeyReused {
		t.Fatalf("hk with another body: %+v", r)
	}
	if got := e.stats.IdempotencyKeys.Load(); got != 5 {
		t.Fatalf("%d keys loaded, want 5 (2 hold, 3 webhook)", got)
	}
}
