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
)

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
	AddExpiries(rec, r.holdTTL, r.orderTTL, r.clients+1)
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
