package bench

import (
	"strings"
	"testing"
	"time"
)

func TestProductArithmetic(t *testing.T) {
	cases := []struct {
		name string
		p    Product
		bad  bool
	}{
		{"consistent", Product{ID: 1, TotalStock: 10, AvailableStock: 5, ReservedStock: 3, SoldStock: 2}, false},
		{"total above sum", Product{ID: 1, TotalStock: 11, AvailableStock: 5, ReservedStock: 3, SoldStock: 2}, true},
		{"negative available", Product{ID: 1, TotalStock: 10, AvailableStock: -1, ReservedStock: 9, SoldStock: 2}, true},
	}
	for _, c := range cases {
		var v violations
		checkProductArithmetic(&v, "now", c.p)
		if n, _ := v.snapshot(); (n > 0) != c.bad {
			t.Errorf("%s: %d violations, want bad=%v", c.name, n, c.bad)
		}
	}
}

func TestUnitsAgainstStock(t *testing.T) {
	before := Product{ID: 1, TotalStock: 10, AvailableStock: 10}
	sold := Product{ID: 1, TotalStock: 10, ReservedStock: 4, SoldStock: 6}
	cases := []struct {
		name  string
		after Product
		l     unitLedger
		want  string // "" = no violation, else a word of the message
	}{
		{"matches", sold, unitLedger{liveUnits: 10}, ""},
		{"unknown margin", sold, unitLedger{liveUnits: 9, unknownUnits: 1}, ""},
		{"server counts more than granted", sold, unitLedger{liveUnits: 8}, "flashbench holds"},
		{"granted more than stock", sold, unitLedger{liveUnits: 12}, "oversold"},
		{"restock raises the bound", Product{ID: 1, TotalStock: 12, ReservedStock: 12}, unitLedger{liveUnits: 12}, ""},
	}
	for _, c := range cases {
		var v violations
		checkUnitsAgainstStock(&v, before, c.after, c.l)
		_, msgs := v.snapshot()
		got := strings.Join(msgs, "; ")
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: violations %q, want %q", c.name, got, c.want)
		}
	}
}

// The audit must fail against servers that break the contract.

func TestAuditFailsWhenTotalIsNotTheSum(t *testing.T) {
	f := startFakeServer(t, map[int64]int64{1: 10}, fakeFaults{reportTotalPlusOne: true})
	res := runBench(t, fakeConfig(f, "browse"))
	requireViolation(t, res, "total_stock")
}

func TestAuditFailsWhenHoldsAreGrantedBeyondStock(t *testing.T) {
	f := startFakeServer(t, map[int64]int64{1: 20}, fakeFaults{oversellUnits: 3})
	cfg := fakeConfig(f, "hot")
	cfg.ProductID = 1
	res := runBench(t, cfg)
	requireViolation(t, res, "oversold")
	if res.Hot.UnitsGranted != 23 {
		t.Errorf("granted %d, want the fake's 20 + 3 oversold", res.Hot.UnitsGranted)
	}
}

func TestAuditFailsWhenAFinalOrderChanges(t *testing.T) {
	f := startFakeServer(t, map[int64]int64{1: 100_000}, fakeFaults{applyEveryWebhook: true})
	cfg := fakeConfig(f, "checkout")
	cfg.Duration = 1500 * time.Millisecond
	// Only one final order in twenty gets a contrary event.
	res := runBenchUntil(t, cfg, func(r *Result) bool { return r.Checkout != nil && r.Checkout.ContraryEvents > 0 })
	if res.Checkout == nil || res.Checkout.ContraryEvents == 0 {
		t.Fatalf("no contrary event in %d runs of %v: the workload did not exercise the fault", benchRunsMax, cfg.Duration)
	}
	requireViolation(t, res, "applied")
	if res.Checkout.DoubledPayments == 0 {
		t.Errorf("doubled payments = 0, want > 0")
	}
}

func TestAuditFailsWhenDuplicatesAreNotReplayed(t *testing.T) {
	f := startFakeServer(t, map[int64]int64{1: 100_000}, fakeFaults{replayWithoutHeader: true})
	res := runBenchUntil(t, fakeConfig(f, "checkout"), func(r *Result) bool { return r.Checkout != nil && r.Checkout.DuplicatesSequential > 0 })
	requireViolation(t, res, "replay")
}

func TestAuditFailsWhenEarlyWebhooksAreRefused(t *testing.T) {
	f := startFakeServer(t, map[int64]int64{1: 100_000}, fakeFaults{notQueueEarlyWebhook: true})
	res := runBench(t, fakeConfig(f, "checkout"))
	requireViolation(t, res, "early webhook")
}

func TestAuditFailsWhenPaymentsAreLost(t *testing.T) {
	f := startFakeServer(t, map[int64]int64{1: 100_000}, fakeFaults{loseSuccesses: true})
	res := runBenchUntil(t, fakeConfig(f, "checkout"), func(r *Result) bool { return r.Checkout != nil && r.Checkout.PaymentsSuccess > 0 })
	requireViolation(t, res, `the order is "pending"`)
	if res.Checkout.LostPayments == 0 {
		t.Errorf("lost payments = 0, want > 0")
	}
}

// requireViolation asserts the audit failed with a message containing word.
func requireViolation(t *testing.T, res *Result, word string) {
	t.Helper()
	if res.Audit.OK || res.Audit.ViolationCount == 0 {
		t.Fatalf("audit passed against a wrong server")
	}
	for _, m := range res.Audit.Violations {
		if strings.Contains(m, word) {
			return
		}
	}
	t.Errorf("no violation mentions %q: %v", word, res.Audit.Violations)
}
