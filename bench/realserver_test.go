package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/bench/apicheck"
)

// The real server, cmd/flashsale, is built once per test binary on first
// use; tests that need it fail when it does not build (a skip would let a
// broken server pass CI).
var realBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
	out  []byte
}

func removeRealServerBuild() {
	if realBuild.dir != "" {
		_ = os.RemoveAll(realBuild.dir)
	}
}

// realServerBinary returns the path of a fresh build of ./cmd/flashsale.
func realServerBinary(t *testing.T) string {
	t.Helper()
	realBuild.once.Do(func() {
		realBuild.dir, realBuild.err = os.MkdirTemp("", "flashbench-e2e-")
		if realBuild.err != nil {
			return
		}
		realBuild.bin = filepath.Join(realBuild.dir, "flashsale")
		cmd := exec.Command("go", "build", "-o", realBuild.bin, "./cmd/flashsale")
		cmd.Dir = ".."
		realBuild.out, realBuild.err = cmd.CombinedOutput()
	})
	if realBuild.err != nil {
		t.Fatalf("the server (./cmd/flashsale) does not build: %v\n%s", realBuild.err, realBuild.out)
	}
	return realBuild.bin
}

// seedProduct is one entry of the server's --seed file.
type seedProduct struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	TotalStock int64  `json:"total_stock"`
	MaxPerHold int64  `json:"max_per_hold"`
}

// e2eCatalog is the catalogue every end-to-end server starts with: a small
// stock for hot, a deep one for checkout, and one for browsing.
var e2eCatalog = []seedProduct{
	{ID: 1, Name: "Hot Widget", PriceCents: 4999, TotalStock: 100, MaxPerHold: 1},
	{ID: 2, Name: "Deep Widget", PriceCents: 1999, TotalStock: 1_000_000, MaxPerHold: 5},
	{ID: 3, Name: "Plain Widget", PriceCents: 999, TotalStock: 500, MaxPerHold: 10},
}

const e2eWebhookSecret = "e2e-secret"

// startRealServer starts cmd/flashsale (see StartServer) with the e2e
// catalogue and webhook secret, and stops it when the test ends, failing
// the test unless it exits 0 on SIGTERM.
func startRealServer(t *testing.T, extraArgs ...string) *ServerProcess {
	t.Helper()
	bin := realServerBinary(t)
	seed, err := json.Marshal(e2eCatalog)
	if err != nil {
		t.Fatal(err)
	}
	seedPath := filepath.Join(t.TempDir(), "seed.json")
	if err := os.WriteFile(seedPath, seed, 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--seed", seedPath, "--webhook-secret", e2eWebhookSecret, "--log-level", "warn"}, extraArgs...)
	srv, err := StartServer(bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("%v\n%s", err, srv.Log())
		}
	})
	checkContract(t, srv)
	return srv
}

// checkContract puts a checking proxy (bench/apicheck) in front of srv
// and points srv.URL at it, so that every request the test's client sends
// and every answer it gets is held to docs/openapi.yaml; the test fails on
// any break, and if nothing went through the proxy at all.
func checkContract(t *testing.T, srv *ServerProcess) {
	t.Helper()
	p, err := apicheck.NewProxy(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	srv.URL = p.URL
	t.Cleanup(func() {
		p.Close()
		errs, n := p.Errors()
		for _, err := range errs {
			t.Error(err)
		}
		if n > len(errs) {
			t.Errorf("... and %d more breaks of docs/openapi.yaml", n-len(errs))
		}
		if p.Checked() == 0 {
			t.Error("no exchange went through the checking proxy")
		}
		t.Logf("docs/openapi.yaml: %d exchanges checked, %d breaks", p.Checked(), n)
	})
}

// runBench runs cfg quietly and fails the test if the run cannot be done.
func runBench(t *testing.T, cfg Config) *Result {
	t.Helper()
	var out bytes.Buffer
	res, err := Run(context.Background(), cfg, &out)
	if err != nil {
		t.Fatalf("run %s: %v\n%s", cfg.Workload, err, out.String())
	}
	t.Logf("%s", out.String())
	return res
}

// requireCleanRun asserts zero violations and a non-zero throughput.
func requireCleanRun(t *testing.T, res *Result) {
	t.Helper()
	if !res.Audit.OK || res.Audit.ViolationCount != 0 {
		t.Errorf("audit found %d violations: %v", res.Audit.ViolationCount, res.Audit.Violations)
	}
	if res.Requests == 0 || res.RequestsPerSec <= 0 {
		t.Errorf("throughput = %d requests, %.1f/s; want > 0", res.Requests, res.RequestsPerSec)
	}
}

func e2eConfig(url, workload string) Config {
	return Config{
		URL: url, Workload: workload, Duration: 2 * time.Second, Conns: 16, Seed: 7,
		WebhookSecret: e2eWebhookSecret,
	}
}

func TestEndToEndHotSellsOutExactly(t *testing.T) {
	cfg := e2eConfig(startRealServer(t).URL, "hot")
	cfg.ProductID = 1
	cfg.Conns = 32
	res := runBench(t, cfg)
	requireCleanRun(t, res)
	if res.Hot == nil || !res.Hot.SoldOut || !res.Hot.GrantedEqualsStock || res.Hot.UnitsGranted != 100 {
		t.Errorf("hot = %+v; want product 1's 100 units granted exactly, then sold out", res.Hot)
	}
}

func TestEndToEndCheckoutVerifiesEveryOrder(t *testing.T) {
	cfg := e2eConfig(startRealServer(t).URL, "checkout")
	cfg.ProductID = 2
	res := runBench(t, cfg)
	requireCleanRun(t, res)
	c := res.Checkout
	if c == nil || c.OrdersCreated == 0 || c.OrdersVerified < c.OrdersCreated {
		t.Fatalf("checkout = %+v; want orders created and each verified", c)
	}
	if c.LostPayments != 0 || c.DoubledPayments != 0 {
		t.Errorf("lost %d, doubled %d payments; want 0", c.LostPayments, c.DoubledPayments)
	}
	if c.PaymentsSuccess == 0 || c.PaymentsFailure == 0 || c.DuplicatesSequential == 0 || c.DuplicatesConcurrent == 0 {
		t.Errorf("checkout = %+v; want successes, failures and duplicates all exercised", c)
	}
}

func TestEndToEndBrowse(t *testing.T) {
	requireCleanRun(t, runBench(t, e2eConfig(startRealServer(t).URL, "browse")))
}

func TestEndToEndMixed(t *testing.T) {
	cfg := e2eConfig(startRealServer(t).URL, "mixed")
	cfg.BrowseWeight, cfg.CheckoutWeight = 3, 1
	cfg.ProductID = 2
	res := runBench(t, cfg)
	requireCleanRun(t, res)
	if res.Checkout == nil || res.Checkout.OrdersVerified == 0 {
		t.Errorf("mixed made no verified orders: %+v", res.Checkout)
	}
}

func TestEndToEndHotCreatesProductThroughAdminAPI(t *testing.T) {
	srv := startRealServer(t)
	cfg := e2eConfig(srv.URL, "hot")
	cfg.AdminToken = srv.AdminToken
	cfg.HotStock = 50
	res := runBench(t, cfg)
	requireCleanRun(t, res)
	if res.Hot == nil || res.Hot.ProductID <= int64(len(e2eCatalog)) || res.Hot.UnitsGranted != 50 {
		t.Errorf("hot = %+v; want a new product whose 50 units are all granted", res.Hot)
	}
}

func TestEndToEndHoldsExpireDuringHot(t *testing.T) {
	cfg := e2eConfig(startRealServer(t, "--hold-ttl", "300ms").URL, "hot")
	cfg.ProductID = 1
	res := runBench(t, cfg)
	requireCleanRun(t, res)
	if res.Hot == nil || res.Hot.UnitsExpired == 0 || res.Hot.UnitsGranted <= 100 {
		t.Errorf("hot = %+v; want holds expiring and their units granted again", res.Hot)
	}
}
