package cluster

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingReporter collects what a check reports instead of failing.
type recordingReporter struct {
	mu     sync.Mutex
	errors []string
}

func (r *recordingReporter) Helper() {}

func (r *recordingReporter) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recordingReporter) Logf(string, ...any) {}

// TestVerifyLedgerDetectsBrokenPromises: the load test's checker passes a
// real run and catches each kind of broken promise planted in its ledger,
// so a pass of TestKill9LeaderUnderLoad means something: an acknowledged
// hold that no node knows, an order whose acknowledged final status
// differs from the cluster's, a keyed answer that does not replay byte for
// byte, and a product whose total differs from the seed.
func TestVerifyLedgerDetectsBrokenPromises(t *testing.T) {
	c := startCluster(t, false)
	l := newLedger()
	ld := newLoad(c, l, "verify", loadRequestLimit)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	ld.run(ctx, 4, rand.Int63())
	t.Logf("load: %s", l.summary())
	verifyLedger(t, c, l, catalog) // a clean run passes
	if t.Failed() {
		t.FailNow()
	}

	var pending int64
	for _, id := range l.orderList {
		if e := l.orders[id]; e.final == "" && !e.hooks {
			pending = id
			break
		}
	}
	if pending == 0 || len(l.keyed) == 0 {
		t.Fatalf("the load made no pending order without webhooks, or no keyed answer: %s", l.summary())
	}
	l.holds["no-such-token"] = holdJSON{HoldToken: "no-such-token", ProductID: 1, Qty: 1}
	l.holdList = append(l.holdList, "no-such-token")
	l.orders[pending].final = "paid"
	l.keyed[0].first.body = append(slices.Clone(l.keyed[0].first.body), ' ')
	seed := slices.Clone(catalog)
	seed[0].TotalStock++

	rec := &recordingReporter{}
	verifyLedger(rec, c, l, seed)
	all := strings.Join(rec.errors, "\n")
	for _, want := range []string{
		"acknowledged hold {HoldToken:no-such-token",
		fmt.Sprintf("order %d through node 1 is pending, but paid was acknowledged", pending),
		fmt.Sprintf("(key %q) through node 1", l.keyed[0].key),
		fmt.Sprintf("product %d: total_stock %d, seeded %d", seed[0].ID, catalog[0].TotalStock, seed[0].TotalStock),
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the checker missed a planted problem: no report contains %q; it reported:\n%s", want, all)
		}
	}
}
