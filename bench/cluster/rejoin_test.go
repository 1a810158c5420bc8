package cluster

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRejoinFromSnapshot: with a snapshot (and log compaction) every 50
// applied entries, node 3 is killed, ~500 holds are acknowledged by the
// other two, and node 3 restarts: the log it missed is compacted away, so
// it must catch up from a snapshot. Every replica then converges to the
// same applied index and digest, and node 3 answers for the new holds.
func TestRejoinFromSnapshot(t *testing.T) {
	const (
		snapshotEntries = 50
		holds           = 500
		workers         = 8
	)
	c := startCluster(t, false, "--raft-snapshot-entries", strconv.Itoa(snapshotEntries))
	c.Kill9(3)
	if err := c.WaitReady(DefaultReadyTimeout); err != nil {
		t.Fatalf("nodes 1 and 2 without node 3: %v", err)
	}
	cl := newClient(t, requestTimeout)
	var next, acked atomic.Int64
	var mu sync.Mutex
	var tokens []string
	var wg sync.WaitGroup
	deadline := time.Now().Add(60 * time.Second)
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for i := next.Add(1); i <= holds && time.Now().Before(deadline); i = next.Add(1) {
				product := catalog[i%3] // the large products, one per partition
				var h holdJSON
				// Node 3's partitions elect new leaders meanwhile: a 503 is retried.
				r, err := retryUnavailable(5*time.Second, func() (reply, error) {
					var r reply
					var err error
					h, r, err = cl.hold(c.URL(1+int(i%2)), product.ID, 1, "")
					return r, err
				})
				if err != nil || r.status != http.StatusCreated {
					t.Errorf("hold %d through node %d: %v %v", i, 1+i%2, r, err)
					return
				}
				acked.Add(1)
				mu.Lock()
				tokens = append(tokens, h.HoldToken)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if acked.Load() != holds {
		t.Fatalf("%d of %d holds acknowledged", acked.Load(), holds)
	}
	c.Restart(3)
	c.WaitConverged(convergeTimeout)
	for i, token := range tokens {
		if i%10 != 0 {
			continue
		}
		r, err := cl.do(c.URL(3), "GET", "/api/holds/"+token, "", "")
		if err != nil || r.status != http.StatusOK {
			t.Errorf("hold %s through the rejoined node 3: %v %v", token, r, err)
		}
	}
	ps, err := cl.products(c.URL(3))
	if err != nil {
		t.Fatal(err)
	}
	checkStock(t, "node 3", catalog, ps)
	t.Logf("node 3 rejoined; its snapshot metrics: %s", metricsMatching(cl, c.URL(3), "snapshot"))
}

// metricsMatching is the lines of a node's /metrics that contain word and
// are not comments, for the log.
func metricsMatching(cl *client, base, word string) string {
	r, err := cl.do(base, "GET", "/metrics", "", "")
	if err != nil {
		return err.Error()
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(string(r.body)))
	for sc.Scan() {
		if line := sc.Text(); strings.Contains(line, word) && !strings.HasPrefix(line, "#") {
			lines = append(lines, line)
		}
	}
	if len(lines) == 0 {
		return fmt.Sprintf("(no metric mentions %q)", word)
	}
	return strings.Join(lines, "; ")
}
