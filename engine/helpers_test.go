package engine

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

var testEpoch = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// testEngine is an engine on a MemJournal and a fake clock.
type testEngine struct {
	*Engine
	t       *testing.T
	journal *MemJournal
	clock   *FakeClock
	cfg     Config
}

func testConfig(clock *FakeClock, j *MemJournal) Config {
	cfg := DefaultConfig()
	cfg.Clock = clock
	cfg.Journal = j
	return cfg
}

// newTestEngine starts an engine with the given products.
func newTestEngine(t *testing.T, specs ...ProductSpec) *testEngine {
	t.Helper()
	return newTestEngineConfigured(t, nil, specs...)
}

// newTestEngineConfigured is newTestEngine with configure (if not nil)
// applied to the test configuration first; restarts keep it.
func newTestEngineConfigured(t *testing.T, configure func(*Config), specs ...ProductSpec) *testEngine {
	t.Helper()
	clock := NewFakeClock(testEpoch)
	j := &MemJournal{}
	te := &testEngine{t: t, journal: j, clock: clock, cfg: testConfig(clock, j)}
	if configure != nil {
		configure(&te.cfg)
	}
	te.Engine = New(te.cfg)
	te.Start()
	t.Cleanup(func() { te.Stop() })
	if _, err := te.Seed(specs); err != nil {
		t.Fatal(err)
	}
	return te
}

// restart stops the engine and replays its journal into a new one on the
// same clock, as a process restart does.
func (te *testEngine) restart() {
	te.t.Helper()
	te.Stop()
	next := New(te.cfg)
	for i, rec := range te.journal.Records() {
		if err := next.Replay(rec); err != nil {
			te.t.Fatalf("replay of record %d: %v", i, err)
		}
	}
	now := te.clock.Now()
	if got, want := dumpState(next, now), dumpState(te.Engine, now); got != want {
		te.t.Fatalf("state after replay differs:\n got: %s\nwant: %s", got, want)
	}
	next.Start()
	te.Engine = next
	te.t.Cleanup(func() { next.Stop() })
}

// advance moves the fake clock and waits until every actor has processed the
// timer ticks it caused (by a round trip through each actor).
func (te *testEngine) advance(d time.Duration) {
	te.clock.Advance(d)
	te.settle()
}

// settle waits until each actor has handled everything sent before it.
func (te *testEngine) settle() {
	for _, a := range te.products.Load().ordered {
		// Two round trips: the first may be handled in the same step as a
		// timer tick that is still pending in the select.
		for i := 0; i < 2; i++ {
			c := getCommand(cmdGetHold)
			a.call(c)
			putCommand(c)
		}
	}
}

func (te *testEngine) product(id uint64) Product {
	te.t.Helper()
	p, ok := te.Product(id)
	if !ok {
		te.t.Fatalf("product %d not found", id)
	}
	if p.TotalStock != p.Available+p.Reserved+p.Sold {
		te.t.Fatalf("product %d breaks the invariant: %+v", id, p)
	}
	return p
}

func (te *testEngine) mustHold(productID uint64, qty int64) Hold {
	te.t.Helper()
	r := te.CreateHold(productID, qty, nil)
	if r.Code != OK {
		te.t.Fatalf("hold %d×%d: %s", productID, qty, r.Code)
	}
	return r.Hold
}

func (te *testEngine) mustOrder(tok HoldToken) Order {
	te.t.Helper()
	r := te.CreateOrder(tok)
	if r.Code != OK || !r.Created {
		te.t.Fatalf("order: %+v", r)
	}
	return r.Order
}

// dumpState renders an engine's whole state canonically, leaving out what
// the janitor may or may not have dropped by now (keys past retention,
// queued webhooks past their deadline). Only for engines whose actors are
// not running (before Start or after Stop).
func dumpState(e *Engine, now time.Time) string {
	var s strings.Builder // a big state is many lines: no quadratic concatenation
	fmt.Fprintf(&s, "lastOrder=%d\n", e.lastOrderID.Load())
	for _, a := range e.products.Load().ordered {
		fmt.Fprintf(&s, "product %d %q %d %d %+v\n", a.id, a.name, a.priceCents, a.maxPerHold, a.counts)
		var holds []string
		a.holds.each(func(seq uint64, h *holdState) {
			holds = append(holds, fmt.Sprintf("  hold %d %+v", seq, *h))
		})
		var orders []string
		a.orders.each(func(id uint64, o *orderState) {
			orders = append(orders, fmt.Sprintf("  order %d %+v", id, *o))
		})
		sort.Strings(holds)
		sort.Strings(orders)
		for _, l := range append(holds, orders...) {
			s.WriteString(l + "\n")
		}
	}
	for _, kt := range []*keyTable{e.holdKeys, e.webhookKeys} {
		var keys []string
		for _, ref := range kt.collect(now.UnixNano()) {
			key, a := decodeKeyRecord(ref.record(), ref.gen*kt.spanNanos)
			keys = append(keys, fmt.Sprintf("  key %q gen=%d %+v", key, ref.gen, a))
		}
		claims := 0
		for i := range kt.shards {
			claims += len(kt.shards[i].claims)
		}
		if claims > 0 {
			keys = append(keys, fmt.Sprintf("  %d open claims", claims))
		}
		sort.Strings(keys)
		for _, l := range keys {
			s.WriteString(l + "\n")
		}
	}
	var queued []string
	for i := range e.orders.shards {
		for id, evs := range e.orders.shards[i].queued {
			for _, ev := range evs {
				if ev.deadlineNanos > now.UnixNano() {
					queued = append(queued, fmt.Sprintf("  queued %d %+v", id, ev))
				}
			}
		}
	}
	sort.Strings(queued)
	for _, l := range queued {
		s.WriteString(l + "\n")
	}
	return s.String()
}
