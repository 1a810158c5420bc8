package cluster

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRejoinFromSnapshot: with a snapshot (and log compaction) every 50
// applied entries, node 3 is killed and the other two nodes acknowledge
// holds on one partition until its log has grown by rejoinEntries entries,
// so that the entries node 3 missed are compacted away (also past an
// implementation's margin of up to 1,000 entries kept for slow followers;
// entries are counted, not holds, since holds may share an entry). Node 3
// restarts and must catch up from a snapshot: it reports a snapshot
// received in /metrics, every replica converges to the same applied index
// and digest, and node 3 answers for the new holds.
func TestRejoinFromSnapshot(t *testing.T) {
	const (
		snapshotEntries = 50
		rejoinEntries   = 1100
		holdsMax        = 20000
		workers         = 4
	)
	c := startCluster(t, false, "--raft-snapshot-entries", strconv.Itoa(snapshotEntries))
	product := productIn(c, 0)
	p := c.PartitionOfProduct(product.ID)
	c.Kill9(3)
	if err := c.WaitReady(DefaultReadyTimeout); err != nil {
		t.Fatalf("nodes 1 and 2 without node 3: %v", err)
	}
	appliedOn1 := func() uint64 {
		info, err := c.Info(1)
		if err != nil {
			t.Fatalf("GET /cluster of node 1: %v", err)
		}
		for _, pi := range info.Partitions {
			if pi.ID == p {
				return pi.AppliedIndex
			}
		}
		t.Fatalf("GET /cluster of node 1 does not list partition %d: %+v", p, info)
		return 0
	}
	from := appliedOn1()
	cl := newClient(t, requestTimeout)
	var sent, acked atomic.Int64
	var stop atomic.Bool
	var mu sync.Mutex
	var tokens []string
	var wg sync.WaitGroup
	deadline := time.Now().Add(60 * time.Second)
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for i := sent.Add(1); i <= holdsMax && !stop.Load() && time.Now().Before(deadline); i = sent.Add(1) {
				node := 1 + int(i%2)
				var h holdJSON
				// Node 3's partitions elect new leaders meanwhile: a 503 is
				// retried (unkeyed: this test counts no units).
				r, err := retryUnavailable(5*time.Second, func() (reply, error) {
					var r reply
					var err error
					h, r, err = cl.hold(c.URL(node), product.ID, 1, "")
					return r, err
				})
				if err != nil || r.Status != http.StatusCreated {
					t.Errorf("hold %d through node %d: %v %v", i, node, r, err)
					stop.Store(true)
					return
				}
				acked.Add(1)
				mu.Lock()
				tokens = append(tokens, h.HoldToken)
				mu.Unlock()
			}
		})
	}
	for !stop.Load() && time.Now().Before(deadline) && sent.Load() < holdsMax {
		if appliedOn1()-from >= rejoinEntries {
			stop.Store(true)
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if t.Failed() {
		return
	}
	grown := appliedOn1() - from
	t.Logf("%d holds acknowledged while node 3 was down; partition %d grew by %d entries", acked.Load(), p, grown)
	if grown < rejoinEntries {
		t.Fatalf("partition %d grew by only %d entries (want %d) within the bounds of the test", p, grown, rejoinEntries)
	}
	c.Restart(3)
	c.WaitConverged(convergeTimeout)
	received, line := snapshotsReceived(cl, c.URL(3))
	t.Logf("node 3 rejoined; /metrics: %s", line)
	if received <= 0 {
		t.Errorf("node 3 caught up without receiving a snapshot (/metrics: %s); the test did not test a rejoin from snapshot", line)
	}
	for i, token := range tokens {
		if i%10 != 0 {
			continue
		}
		r, err := cl.Do(c.URL(3), "GET", "/api/holds/"+token, "", "")
		if err != nil || r.Status != http.StatusOK {
			t.Errorf("hold %s through the rejoined node 3: %v %v", token, r, err)
		}
	}
	checkStock(t, "node 3", catalog, mustProducts(t, cl, c.URL(3)))
}

// snapshotsReceived sums the /metrics samples of a node whose name or
// labels mention both "snapshot" and "received" (docs/API.md names the figure,
// "snapshot transfers", not the metric), and returns them for the log.
func snapshotsReceived(cl *client, base string) (float64, string) {
	r, err := cl.Do(base, "GET", "/metrics", "", "")
	if err != nil {
		return 0, err.Error()
	}
	var sum float64
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(string(r.Body)))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || !strings.Contains(line, "snapshot") || !strings.Contains(line, "received") {
			continue
		}
		lines = append(lines, line)
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
				sum += v
			}
		}
	}
	if len(lines) == 0 {
		return 0, "(no metric of received snapshots)"
	}
	return sum, strings.Join(lines, "; ")
}
