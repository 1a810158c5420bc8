package cluster

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// unavailableWithin is docs/API.md's bound for a partition without leader or
// majority to answer 503 unavailable (2 s), plus slack for a loaded
// machine.
const unavailableWithin = 2500 * time.Millisecond

// TestPartitionedLeaderAcknowledgesNothing: every Raft link of a
// partition's leader is made to drop everything. Holds sent to the isolated
// node from then on are never acknowledged: each is answered 503
// unavailable with Retry-After: 1 within 2 s (plus slack), never 201. The
// two other nodes elect a new leader that serves 201s. After the links
// heal, the replicas converge; the holds the majority acknowledged are all
// there through every node; the product's reserved_stock is exactly the
// units of those holds (nothing the isolated node took in survived, and
// nothing was counted twice); and a key first refused by the isolated node
// and then acknowledged by the majority replays that one answer everywhere.
func TestPartitionedLeaderAcknowledgesNothing(t *testing.T) {
	const (
		isolatedFor = 4 * time.Second // holds are sent to the isolated node this long
		sendEvery   = 100 * time.Millisecond
	)
	c := startCluster(t, true)
	cl := newClient(t, 2*unavailableWithin)
	p := 0
	product := productIn(c, p)
	leader := c.Leader(p)
	if leader == 0 {
		t.Fatal("partition 0 has no leader")
	}
	others := without(c.IDs(), leader)
	before := mustProduct(t, cl, c.URL(others[0]), product.ID)
	for _, link := range c.LinksOf(leader) {
		link.Drop()
	}
	cut := time.Now()
	t.Logf("node %d (leader of partition %d) cut off; product %d: %+v", leader, p, product.ID, before)

	// The isolated node: a hold every sendEvery, each under its own key.
	type isolatedAnswer struct {
		key    string
		r      reply
		err    error
		sentAt time.Duration
	}
	var mu sync.Mutex
	var isolated []isolatedAnswer
	var wg sync.WaitGroup
	for i := 0; time.Since(cut) < isolatedFor; i++ {
		key := fmt.Sprintf("isolated-%d", i)
		sentAt := time.Since(cut)
		wg.Go(func() {
			_, r, err := cl.hold(c.URL(leader), product.ID, 1, key)
			mu.Lock()
			isolated = append(isolated, isolatedAnswer{key: key, r: r, err: err, sentAt: sentAt})
			mu.Unlock()
		})
		time.Sleep(sendEvery)
	}

	// The majority: a new leader that acknowledges holds.
	var acked []holdJSON
	newLeader := 0
	deadline := time.Now().Add(10 * time.Second)
	for newLeader == 0 && time.Now().Before(deadline) {
		for _, id := range others {
			if info, err := c.Info(id); err == nil {
				for _, pi := range info.Partitions {
					if pi.ID == p && pi.Leader != 0 && pi.Leader != leader {
						newLeader = pi.Leader
					}
				}
			}
		}
		time.Sleep(pollInterval)
	}
	if newLeader == 0 {
		t.Fatalf("the majority %v elected no leader of partition %d within 10 s of the cut", others, p)
	}
	for i := 0; i < 10; i++ {
		// Keyed, so that a retry after a 503 (whose outcome is unknown) is a replay.
		h, _ := mustHold(t, cl, c.URL(others[i%2]), product.ID, 2, fmt.Sprintf("majority-%d", i))
		acked = append(acked, h)
	}
	wg.Wait()

	for _, a := range isolated {
		switch {
		case a.err != nil:
			t.Errorf("hold %q sent to the isolated node %v after the cut: no answer within %v: %v", a.key, a.sentAt, 2*unavailableWithin, a.err)
		case a.r.Status == http.StatusCreated:
			t.Errorf("hold %q sent to the isolated node %v after the cut was acknowledged: %v", a.key, a.sentAt, a.r)
		case a.r.Status != http.StatusServiceUnavailable || a.r.ErrorCode() != "unavailable" || a.r.RetryAfter != "1":
			t.Errorf("hold %q to the isolated node: %v (Retry-After %q), want 503 unavailable with Retry-After: 1", a.key, a.r, a.r.RetryAfter)
		case a.r.Took > unavailableWithin:
			t.Errorf("hold %q to the isolated node took %v to be refused, want at most %v", a.key, a.r.Took, unavailableWithin)
		}
	}
	t.Logf("%d holds sent to the isolated node; new leader node %d", len(isolated), newLeader)

	// A key the isolated node refused, now sent to the majority.
	retried, first := mustHold(t, cl, c.URL(others[0]), product.ID, 1, "isolated-0")
	acked = append(acked, retried)

	for _, link := range c.LinksOf(leader) {
		link.Heal()
	}
	if err := c.WaitReady(DefaultReadyTimeout); err != nil {
		t.Fatal(err)
	}
	c.WaitConverged(convergeTimeout)

	var want int64
	for _, h := range acked {
		want += h.Qty
	}
	for _, id := range c.IDs() {
		for _, h := range acked {
			r, err := cl.Do(c.URL(id), "GET", "/api/holds/"+h.HoldToken, "", "")
			if err != nil || r.Status != http.StatusOK {
				t.Errorf("acknowledged hold %+v through node %d after healing: %v %v", h, id, r, err)
			}
		}
		got := mustProduct(t, cl, c.URL(id), product.ID)
		if got.ReservedStock-before.ReservedStock != want || got.AvailableStock != before.AvailableStock-want {
			t.Errorf("node %d: product %d is %+v after healing; before the cut %+v, and %d units were acknowledged since",
				id, product.ID, got, before, want)
		}
		r, err := cl.Do(c.URL(id), "POST", "/api/holds", fmt.Sprintf(`{"product_id":%d,"qty":1}`, product.ID), "isolated-0")
		if err != nil || r.Status != first.Status || !bytes.Equal(r.Body, first.Body) || !r.Replayed {
			t.Errorf("replay of key isolated-0 through node %d: %v (replayed %v) %v, want %v replayed", id, r, r.Replayed, err, first)
		}
	}
}
