package linearize

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// fakeRun records a workload against a fake server and checks it.
func fakeRun(t *testing.T, f fault, seed uint64, vis string) Result {
	t.Helper()
	return Check(realCatalog, fakeHistory(t, f, seed, 300), Options{VisualizePath: vis})
}

func fakeHistory(t *testing.T, f fault, seed uint64, ops int) []porcupine.Operation {
	t.Helper()
	srv := startFake(t, realCatalog, f)
	client := NewClient(func() string { return srv.url }, 10*time.Second)
	defer client.CloseIdle()
	rec := NewRecorder()
	Workload{Catalog: realCatalog, Clients: 8, Ops: ops, Duration: 5 * time.Second, Seed: seed,
		KeyPrefix: fmt.Sprintf("f%d-", seed)}.Run(context.Background(), client, rec)
	if err := Sweep(client, rec, realCatalog, 8, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return rec.History()
}

// TestPartitionsAgreeWithWholeHistory: checking product by product gives
// the verdict of checking the whole history at once, on small histories of
// the correct and of faulty fake servers.
func TestPartitionsAgreeWithWholeHistory(t *testing.T) {
	byProduct, whole := NewModel(realCatalog), NewModel(realCatalog)
	whole.Partition = nil
	for _, f := range []fault{faultNone, faultOverGrant, faultLoseAcked, faultDoubleApply} {
		for seed := uint64(1); seed <= 1; seed++ {
			h := fakeHistory(t, f, seed, 110)
			h = MarkSingleUseKeys(h)
			parts := porcupine.CheckOperationsTimeout(byProduct, h, time.Minute)
			all := porcupine.CheckOperationsTimeout(whole, h, time.Minute)
			t.Logf("%s seed %d: %d operations: by product %s, whole %s", f, seed, len(h), parts, all)
			if parts != all {
				t.Errorf("%s seed %d: by product %s, whole history %s", f, seed, parts, all)
			}
		}
	}
}

// TestFakeServerWithoutFaultPasses: a correct implementation that shares
// no code with the model passes, so a violation means a bug, not noise.
func TestFakeServerWithoutFaultPasses(t *testing.T) {
	for seed := uint64(1); seed <= 2; seed++ {
		res := fakeRun(t, faultNone, seed, "")
		t.Logf("seed %d: %s", seed, res)
		if !res.OK() {
			t.Fatalf("the correct fake server failed the check:\n%s", res.Report)
		}
	}
}

// TestCheckerCatchesInjectedFaults: each deliberate bug of the fake server
// (granting one unit too many, applying a replayed webhook again, serving
// stale product reads, forgetting acknowledged holds in a "restart") is
// reported as a violation within a few seeded
// runs, with a readable report and an HTML visualization.
func TestCheckerCatchesInjectedFaults(t *testing.T) {
	for _, f := range []fault{faultOverGrant, faultDoubleApply, faultStaleRead, faultLoseAcked} {
		t.Run(f.String(), func(t *testing.T) {
			vis := filepath.Join(t.TempDir(), "violation.html")
			for seed := uint64(1); seed <= 5; seed++ {
				res := fakeRun(t, f, seed, vis)
				if res.OK() {
					t.Logf("seed %d: not caught: %s", seed, res)
					continue
				}
				t.Logf("seed %d: caught: %s\n%s", seed, res, res.Report)
				if st, err := os.Stat(vis); err != nil || st.Size() == 0 {
					t.Errorf("no visualization written at %s: %v", vis, err)
				}
				return
			}
			t.Fatalf("fault %s went unnoticed in 5 runs", f)
		})
	}
}
