package linearize

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/flashsale/flashsale/bench/serverproc"
	"go.uber.org/goleak"
)

// LongEnv turns on the long runs (make verify): LINEARIZE_LONG=1.
const LongEnv = "LINEARIZE_LONG"

// TestMain removes the server binary and fails the run if a test left a
// goroutine behind (a fake server, a client connection, a workload).
func TestMain(m *testing.M) {
	code := m.Run()
	serverproc.Cleanup()
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreCurrent()); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines left behind: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// realCatalog is small on purpose: stock runs out within a run, so 409s,
// replayed 409s and units given back by failed payments all happen.
var realCatalog = []Product{
	{ID: 1, Name: "Widget", PriceCents: 500, TotalStock: 12, MaxPerHold: 3},
	{ID: 2, Name: "Sneaker", PriceCents: 2000, TotalStock: 5, MaxPerHold: 2},
	{ID: 3, Name: "Gift card", PriceCents: 100, TotalStock: 40, MaxPerHold: 4},
}

// TestRealServerLinearizable: seeded runs of a few hundred concurrent
// requests against cmd/flashsale; every history must be linearizable.
func TestRealServerLinearizable(t *testing.T) {
	for _, seed := range seeds(3) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			realRun{seed: seed, clients: 8, ops: 300, duration: 4 * time.Second, fsync: "always"}.run(t)
		})
	}
}

// TestRealServerLinearizableAcrossKill9: the same, with a kill -9 and a
// restart in the middle; unanswered requests may or may not have happened,
// everything answered must fit one linear order.
func TestRealServerLinearizableAcrossKill9(t *testing.T) {
	for _, seed := range seeds(2) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			realRun{seed: seed, clients: 8, ops: 300, duration: 3 * time.Second, kills: 1, fsync: "always"}.run(t)
		})
	}
}

// TestRealServerLinearizableWithExpiry: holds live 300 ms and orders
// 800 ms, clients pause between requests, so holds and orders expire in
// the middle of the run; each must expire within docs/API.md's 100 ms.
func TestRealServerLinearizableWithExpiry(t *testing.T) {
	for _, seed := range seeds(2) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			realRun{seed: 50 + seed, clients: 8, ops: 300, duration: 5 * time.Second, fsync: "always",
				holdTTL: 300 * time.Millisecond, orderTTL: 800 * time.Millisecond, think: 15 * time.Millisecond, scale: 2}.run(t)
		})
	}
}

// TestRealServerLinearizableAcrossKill9WithExpiry: expiring holds and
// orders and a kill -9; holds whose expires_at passes while the server is
// down must be expired once it is back.
func TestRealServerLinearizableAcrossKill9WithExpiry(t *testing.T) {
	for _, seed := range seeds(1) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			realRun{seed: 70 + seed, clients: 8, ops: 300, duration: 5 * time.Second, kills: 1, fsync: "always",
				holdTTL: 300 * time.Millisecond, orderTTL: 800 * time.Millisecond, think: 15 * time.Millisecond, scale: 2}.run(t)
		})
	}
}

// TestRealServerLinearizableLong: longer runs, only with LINEARIZE_LONG=1
// (make verify): 2,000 requests by 16 clients; the same with three kills;
// 1,500 with expiring holds and orders on --fsync never; and those with
// three kills.
func TestRealServerLinearizableLong(t *testing.T) {
	if os.Getenv(LongEnv) == "" {
		t.Skipf("long runs only with %s=1", LongEnv)
	}
	for _, seed := range seeds(5) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			realRun{seed: 100 + seed, clients: 16, ops: 2000, duration: 20 * time.Second, fsync: "always", scale: 3}.run(t)
			realRun{seed: 200 + seed, clients: 16, ops: 2000, duration: 20 * time.Second, kills: 3, fsync: "always", scale: 3}.run(t)
			realRun{seed: 300 + seed, clients: 16, ops: 1500, duration: 20 * time.Second, fsync: "never", scale: 3,
				holdTTL: 400 * time.Millisecond, orderTTL: time.Second, think: 10 * time.Millisecond}.run(t)
			realRun{seed: 400 + seed, clients: 16, ops: 1500, duration: 20 * time.Second, kills: 3, fsync: "always", scale: 3,
				holdTTL: 400 * time.Millisecond, orderTTL: time.Second, think: 10 * time.Millisecond}.run(t)
		})
	}
}
