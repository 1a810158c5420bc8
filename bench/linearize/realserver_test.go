package linearize

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
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

// realRun is one recorded run against cmd/flashsale.
type realRun struct {
	seed     uint64
	clients  int
	ops      int
	duration time.Duration
	kills    int           // kill -9 and restart this many times during the run
	fsync    string        // --fsync
	holdTTL  time.Duration // --hold-ttl; default 1h
	orderTTL time.Duration // --order-ttl; default 0 (off)
	think    time.Duration // Workload.Think
	scale    int64         // multiplies realCatalog's stock; default 1
}

// run starts the server, drives the workload (killing and restarting the
// server r.kills times at seeded moments), sweeps, and checks the history.
func (r realRun) run(t *testing.T) Result {
	t.Helper()
	bin := serverproc.Build(t)
	dir := t.TempDir()
	seedFile := filepath.Join(t.TempDir(), "seed.json")
	if r.holdTTL == 0 {
		r.holdTTL = time.Hour
	}
	catalog := slices.Clone(realCatalog)
	for i := range catalog {
		catalog[i].TotalStock *= max(r.scale, 1)
	}
	data, _ := json.Marshal(catalog)
	if err := os.WriteFile(seedFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--seed", seedFile, "--hold-ttl", r.holdTTL.String(), "--order-ttl", r.orderTTL.String(), "--fsync", r.fsync}
	srv := serverproc.Start(t, bin, dir, flags...)
	var url atomic.Value
	url.Store(srv.URL())
	client := NewClient(func() string { return url.Load().(string) }, 10*time.Second)
	defer client.CloseIdle()
	rec := NewRecorder()
	w := Workload{Catalog: catalog, Clients: r.clients, Ops: r.ops, Duration: r.duration,
		Seed: r.seed, KeyPrefix: fmt.Sprintf("s%d-", r.seed), Think: r.think}
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(context.Background(), client, rec)
	}()
	rng := rand.New(rand.NewPCG(r.seed, 99))
	used := map[string]bool{}
	for i := 0; i < r.kills; i++ {
		// Kill once the run is a seeded 20-80% further through its budget.
		at := r.ops * (i*60 + 20 + rng.IntN(60)) / (100 * r.kills)
		for rec.Len() < at && !isDone(done) {
			time.Sleep(time.Millisecond)
		}
		if isDone(done) {
			t.Logf("the workload ended before kill %d", i+1)
		}
		srv.Kill9()
		rec.ServerDied(srv.URL())
		used[srv.URL()] = true
		killedAt := rec.Len()
		srv = serverproc.Start(t, bin, dir, flags...)
		for used[srv.URL()] { // ServerDied needs every server at a new URL
			srv.Kill9()
			srv = serverproc.Start(t, bin, dir, flags...)
		}
		url.Store(srv.URL())
		t.Logf("kill -9 #%d after %d operations; restarted at %s", i+1, killedAt, srv.URL())
	}
	<-done
	if err := Sweep(client, rec, catalog, r.clients, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	AddExpiries(rec, r.orderTTL, r.clients+1)
	history := rec.History()
	if dir := os.Getenv("LINEARIZE_SAVE_DIR"); dir != "" { // keep every history, e.g. to time the checker
		if err := SaveHistory(filepath.Join(dir, fmt.Sprintf("seed-%d.json", r.seed)), catalog, history); err != nil {
			t.Error(err)
		}
	}
	res := Check(catalog, history, Options{Timeout: 2 * time.Minute})
	t.Logf("seed %d: %s (%d unanswered)\n%s", r.seed, res, countUnanswered(history), Summary(history))
	if !res.OK() {
		t.Errorf("seed %d: the real server's history is not linearizable:\n%s", r.seed, res.Report)
	}
	if code := srv.Term(); code != 0 {
		t.Errorf("flashsale exited %d after SIGTERM", code)
	}
	return res
}

func countUnanswered(history []porcupine.Operation) (n int) {
	for _, op := range history {
		if op.Output.(Output).Unknown {
			n++
		}
	}
	return n
}

func isDone(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func seeds(n int) []uint64 {
	if s := os.Getenv("LINEARIZE_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err == nil {
			return []uint64{v}
		}
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i + 1)
	}
	return out
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
// the middle of the run; each must expire within API.md's 100 ms.
func TestRealServerLinearizableWithExpiry(t *testing.T) {
	for _, seed := range seeds(2) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			realRun{seed: 50 + seed, clients: 8, ops: 300, duration: 5 * time.Second, fsync: "always",
				holdTTL: 300 * time.Millisecond, orderTTL: 800 * time.Millisecond, think: 15 * time.Millisecond, scale: 2}.run(t)
		})
	}
}

// TestRealServerLinearizableLong: longer runs, only with LINEARIZE_LONG=1
// (make verify): 2,000 requests by 16 clients; the same with three kills;
// and 1,500 with expiring holds and orders on --fsync never.
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
		})
	}
}
