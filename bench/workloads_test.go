package bench

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeConfig is a short run against the fake server.
func fakeConfig(f *fakeServer, workload string) Config {
	return Config{URL: f.url(), Workload: workload, Duration: 700 * time.Millisecond, Conns: 8, Seed: 3}
}

func TestHotAgainstFakeGrantsExactlyTheStock(t *testing.T) {
	f := startFakeServer(t, map[int64]int64{1: 40, 2: 10}, fakeFaults{})
	cfg := fakeConfig(f, "hot")
	cfg.ProductID = 1
	res := runBench(t, cfg)
	requireCleanRun(t, res)
	h := res.Hot
	if h == nil || h.StockAtStart != 40 || h.UnitsGranted != 40 || !h.GrantedEqualsStock || !h.SoldOut {
		t.Fatalf("hot = %+v; want 40 of 40 units granted, then sold out", h)
	}
	if h.RejectsAfterSold == 0 || h.RejectShareAfter != 1 || h.SellOutMillis <= 0 {
		t.Errorf("hot = %+v; want only 409s after the sell-out", h)
	}
	if g := h.Phase("granted"); g.Latency.Count != 40 || g.Requests != 40 || g.RequestsPerSec <= 0 {
		t.Errorf("granted phase = %+v; want the latency of exactly the 40 grants and a grant rate", g)
	}
}

func TestHotCreatesItsProductWithAdminToken(t *testing.T) {
	f := startFakeServer(t, map[int64]int64{1: 5}, fakeFaults{})
	cfg := fakeConfig(f, "hot")
	cfg.AdminToken, cfg.HotStock = f.adminToken, 25
	res := runBench(t, cfg)
	requireCleanRun(t, res)
	if res.Hot.ProductID != 2 || res.Hot.UnitsGranted != 25 {
		t.Errorf("hot = %+v; want the new product 2 with its 25 units granted", res.Hot)
	}
}

func TestCheckoutAgainstFakeVerifiesEveryOrder(t *testing.T) {
	f := startFakeServer(t, map[int64]int64{1: 100_000, 2: 3}, fakeFaults{})
	f.secret = "s3cret"
	cfg := fakeConfig(f, "checkout")
	cfg.WebhookSecret = f.secret
	res := runBench(t, cfg)
	requireCleanRun(t, res)
	c := res.Checkout
	if c == nil || c.OrdersCreated == 0 || c.OrdersVerified < c.OrdersCreated {
		t.Fatalf("checkout = %+v; want orders, each verified", c)
	}
	if c.PaymentsSuccess == 0 || c.PaymentsFailure == 0 || c.DuplicatesSequential == 0 || c.DuplicatesConcurrent == 0 || c.EarlyWebhooks == 0 {
		t.Errorf("checkout = %+v; want every twist exercised", c)
	}
	if c.OrdersPaid+c.OrdersCancelled+c.OrdersPending != c.OrdersVerified {
		t.Errorf("checkout = %+v; verified orders do not add up", c)
	}
	if c.EarlyWebhooksLeftQueued != 0 || c.EarlyWebhooksResolved != c.EarlyWebhooks {
		t.Errorf("checkout = %+v; want every early webhook's order created and checked", c)
	}
}

func TestCheckoutToleratesWebhooksQueuedBeforeTheRun(t *testing.T) {
	f := startFakeServer(t, map[int64]int64{1: 100_000}, fakeFaults{})
	const queued = 30
	tgt := newTarget(f.ln.Addr().String(), 1, "", "")
	w := newWorker(0, tgt, newRecorder(1), 1)
	for id := int64(1); id <= queued; id++ {
		key := appendKey(nil, "earlier-run", 'e', id, 0)
		if a := deliver(w, key, webhookBody(nil, id, true, key)); a.status != 202 {
			t.Fatalf("queueing a webhook for order %d: %d %s", id, a.status, a.body)
		}
	}
	res := runBench(t, fakeConfig(f, "checkout"))
	requireCleanRun(t, res)
	if got := res.Checkout.OrdersFinalAtCreation; got != queued {
		t.Errorf("orders final at creation = %d, want the %d queued before the run", got, queued)
	}
}

func TestCheckoutWithoutSecretIsRefusedBySigningServer(t *testing.T) {
	f := startFakeServer(t, map[int64]int64{1: 1000}, fakeFaults{})
	f.secret = "s3cret"
	res := runBench(t, fakeConfig(f, "checkout"))
	if res.Audit.OK {
		t.Fatal("audit passed although every webhook was refused with 401")
	}
}

func TestBrowseAgainstFake(t *testing.T) {
	f := startFakeServer(t, map[int64]int64{1: 1, 2: 2, 3: 3}, fakeFaults{})
	res := runBench(t, fakeConfig(f, "browse"))
	requireCleanRun(t, res)
	if len(res.Audit.Products) != 3 {
		t.Errorf("audited %d products, want 3", len(res.Audit.Products))
	}
	for _, e := range res.Endpoints {
		if e.Endpoint != EndpointProductGet.String() && e.Endpoint != EndpointProductList.String() {
			t.Errorf("browse called %s", e.Endpoint)
		}
	}
}

func TestMixedAgainstFakeDoesBoth(t *testing.T) {
	f := startFakeServer(t, map[int64]int64{1: 100_000}, fakeFaults{})
	cfg := fakeConfig(f, "mixed")
	cfg.BrowseWeight, cfg.CheckoutWeight = 1, 1
	res := runBench(t, cfg)
	requireCleanRun(t, res)
	if res.Checkout == nil || res.Checkout.OrdersVerified == 0 {
		t.Errorf("mixed made no verified orders")
	}
}

func TestOpenLoopRunsAtTheRequestedRate(t *testing.T) {
	f := startFakeServer(t, map[int64]int64{1: 1}, fakeFaults{})
	cfg := fakeConfig(f, "browse")
	cfg.RatePerSec, cfg.Duration = 200, time.Second
	res := runBench(t, cfg)
	requireCleanRun(t, res)
	if res.Mode != "open" {
		t.Errorf("mode = %q, want open", res.Mode)
	}
	if done := res.Ops + res.MissedArrivals; done < 195 || done > 205 {
		t.Errorf("ops + missed = %d, want 200 ± 5 for 200/s during 1 s", done)
	}
}

func TestJSONOutputHasEveryFigure(t *testing.T) {
	f := startFakeServer(t, map[int64]int64{1: 10}, fakeFaults{})
	cfg := fakeConfig(f, "hot")
	cfg.ProductID = 1
	cfg.JSONPath = filepath.Join(t.TempDir(), "out.json")
	runBench(t, cfg)
	b, err := os.ReadFile(cfg.JSONPath)
	if err != nil {
		t.Fatal(err)
	}
	var got Result
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Workload != "hot" || got.Hot == nil || got.Hot.UnitsGranted != 10 || len(got.Endpoints) == 0 ||
		got.Endpoints[0].Latency.P99Micros <= 0 || !got.Audit.OK {
		t.Errorf("JSON result = %s", b)
	}
}

func TestCeilingRunsAgainstItsOwnProcess(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	res := runBench(t, Config{Workload: "ceiling", Duration: 500 * time.Millisecond, Conns: 4, CeilingExe: exe})
	if res.Ceiling == nil || res.Ceiling.RequestsPerSec <= 0 || res.Requests == 0 {
		t.Fatalf("ceiling = %+v, requests %d; want a throughput", res.Ceiling, res.Requests)
	}
}

func TestWithCeilingReportsARatio(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f := startFakeServer(t, map[int64]int64{1: 1}, fakeFaults{})
	cfg := fakeConfig(f, "browse")
	cfg.Duration, cfg.WithCeiling, cfg.CeilingExe = 400*time.Millisecond, true, exe
	res := runBench(t, cfg)
	if res.Ceiling == nil || res.Ceiling.Ratio <= 0 {
		t.Fatalf("ceiling = %+v; want a ratio", res.Ceiling)
	}
}

func TestSuiteRunsEveryWorkloadAndComparesToCeiling(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f := startFakeServer(t, map[int64]int64{1: 100_000}, fakeFaults{})
	cfg := fakeConfig(f, "")
	cfg.Duration, cfg.CeilingExe, cfg.AdminToken, cfg.HotStock = 300*time.Millisecond, exe, f.adminToken, 20
	var out lockedBuffer
	s, err := RunSuite(context.Background(), cfg, 2, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log(out.String())
	if !s.OK() || len(s.Rows) != 6 || len(s.Runs) != 10 {
		t.Fatalf("suite: ok %v, %d rows, %d runs; want ok, 6 rows, 10 runs", s.OK(), len(s.Rows), len(s.Runs))
	}
	var phases []string
	for _, r := range s.Rows {
		phases = append(phases, r.Workload+"/"+r.Phase)
	}
	if got, want := strings.Join(phases, " "), "ceiling/all browse/all hot/granted hot/sold_out grants/granted checkout/all"; got != want {
		t.Errorf("rows %s, want %s", got, want)
	}
	for _, run := range s.Runs {
		switch run.Workload {
		case "hot":
			if g := run.Hot.Phase("granted"); g.Requests != 20 {
				t.Errorf("hot's granted phase = %+v; want the product's 20 units", g)
			}
		case "grants":
			if run.Hot.SoldOut || run.Hot.Phase("granted").Requests != run.Requests {
				t.Errorf("grants = %+v; want every request granted, no sell-out", run.Hot)
			}
		}
	}
	for _, r := range s.Rows {
		if len(r.RequestsPerSec) != 2 || r.MedianRequestsPerSec <= 0 || r.RatioToCeiling <= 0 {
			t.Errorf("row %+v: want 2 rounds, a median and a ratio", r)
		}
	}
	if s.Rows[0].Workload != "ceiling" || s.Rows[0].RatioToCeiling != 1 {
		t.Errorf("first row %+v, want the ceiling at ratio 1", s.Rows[0])
	}
	for _, want := range []string{"| hot | granted |", "| hot | sold_out |", "| grants | granted |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q row in the table:\n%s", want, out.String())
		}
	}
}

func TestMedian(t *testing.T) {
	if got := median([]float64{5, 1, 3}); got != 3 {
		t.Errorf("median(5,1,3) = %v", got)
	}
	if got := median([]int64{4, 1, 3, 2}); got != 2 {
		t.Errorf("median(4,1,3,2) = %v, want 2 (integer mean of 2 and 3)", got)
	}
	xs := []float64{3, 1, 2}
	median(xs)
	if xs[0] != 3 {
		t.Error("median reordered its argument")
	}
}

func TestCheckoutWithNoSuccessfulPayments(t *testing.T) {
	f := startFakeServer(t, map[int64]int64{1: 1000}, fakeFaults{})
	cfg := fakeConfig(f, "checkout")
	cfg.SuccessShare = -1
	res := runBench(t, cfg)
	requireCleanRun(t, res)
	if c := res.Checkout; c.PaymentsSuccess != 0 || c.OrdersPaid != 0 || c.OrdersCancelled == 0 {
		t.Errorf("checkout = %+v; want every payment failed and every order cancelled", c)
	}
}
