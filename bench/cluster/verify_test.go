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
	l.keyed[0].first.Body = append(slices.Clone(l.keyed[0].first.Body), ' ')
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

// TestCheckerCatchesUncommittedAnswers runs the load against a cluster whose
// leaders answer without replicating (--fault-ack-uncommitted) and kills a
// leader: the checker must report acknowledged work that the cluster lost,
// so that its silence on a correct cluster means something.
func TestCheckerCatchesUncommittedAnswers(t *testing.T) {
	c := startCluster(t, false, "--fault-ack-uncommitted")
	l := newLedger()
	ld := newLoad(c, l, "fault", loadRequestLimit)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	ld.run(ctx, 4, rand.Int63())
	if l.counts["hold 201"] == 0 {
		t.Fatalf("the faulty cluster acknowledged no hold: %s", l.summary())
	}
	for p := 0; p < c.Partitions(); p++ {
		if leader := c.Leader(p); leader != 0 {
			c.Kill9(leader)
			c.Restart(leader)
		}
	}
	if err := c.WaitReady(DefaultReadyTimeout); err != nil {
		t.Fatal(err)
	}
	rec := &recordingReporter{}
	verifyLedger(rec, c, l, catalog)
	if len(rec.errors) == 0 {
		t.Fatalf("the checker found nothing wrong with a cluster that never replicated: %s", l.summary())
	}
	t.Logf("the checker reported %d problems, the first: %s", len(rec.errors), rec.errors[0])
}
