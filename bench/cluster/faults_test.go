package cluster

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// keyedHoldsUntilServed posts holds of qty 1 on product, each under its own
// key, through the nodes in turn, for sendFor; every key is retried (its
// replay is safe) until it is acknowledged, for up to servePatience. It
// returns the acknowledged holds, and reports answers other than 201, 503,
// or no answer, and keys never acknowledged.
func keyedHoldsUntilServed(t *testing.T, c *Cluster, cl *client, product int64, tag string, sendFor, servePatience time.Duration) []holdJSON {
	t.Helper()
	var mu sync.Mutex
	var acked []holdJSON
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; time.Since(start) < sendFor; i++ {
		key := fmt.Sprintf("%s-%d", tag, i)
		wg.Go(func() {
			deadline := time.Now().Add(servePatience)
			for attempt := 0; ; attempt++ {
				node := c.IDs()[(i+attempt)%len(c.IDs())]
				h, r, err := cl.hold(c.URL(node), product, 1, key)
				switch {
				case err == nil && r.Status == http.StatusCreated:
					mu.Lock()
					acked = append(acked, h)
					mu.Unlock()
					return
				case err == nil && r.Status != http.StatusServiceUnavailable:
					t.Errorf("hold under key %s through node %d: %v", key, node, r)
					return
				}
				if time.Now().After(deadline) {
					t.Errorf("hold under key %s: not acknowledged within %v (last: %v %v)", key, servePatience, r, err)
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	return acked
}

// checkHoldsExactly checks, through every node, that every acknowledged
// hold is there and that product's reserved units grew by exactly their
// quantities since before: no key was applied twice, and nothing refused or
// lost was applied behind the clients' backs.
func checkHoldsExactly(t *testing.T, c *Cluster, cl *client, before productJSON, acked []holdJSON) {
	t.Helper()
	var want int64
	for _, h := range acked {
		want += h.Qty
	}
	for _, id := range c.IDs() {
		for _, h := range acked {
			r, err := retryUnavailable(5*time.Second, func() (reply, error) {
				return cl.Do(c.URL(id), "GET", "/api/holds/"+h.HoldToken, "", "")
			})
			if err != nil || r.Status != http.StatusOK {
				t.Errorf("acknowledged hold %s through node %d: %v %v", h.HoldToken, id, r, err)
			}
		}
		got := mustProduct(t, cl, c.URL(id), before.ID)
		if got.ReservedStock-before.ReservedStock != want {
			t.Errorf("node %d: product %d reserves %d units more than before the faults; %d were acknowledged (%d holds)",
				id, before.ID, got.ReservedStock-before.ReservedStock, want, len(acked))
		}
	}
}

// TestOneWayCutLeader: the leader of a partition first cannot send to
// either peer (what it receives still arrives), then, after healing,
// cannot receive from either (what it sends still arrives). Each time,
// keyed holds on a product of that partition, sent through every node in
// turn and retried under their keys, are all acknowledged within 8 s
// (the two others form a majority), nothing but 201 or 503 is answered,
// and after healing the replicas converge and the product reserves
// exactly the acknowledged units.
func TestOneWayCutLeader(t *testing.T) {
	const (
		sendFor       = 3 * time.Second
		servePatience = 8 * time.Second
	)
	c := startCluster(t, true)
	cl := newClient(t, 2*unavailableWithin)
	product := productIn(c, 0)
	for _, phase := range []string{"cannot send", "cannot receive"} {
		leader := c.Leader(0)
		if leader == 0 {
			t.Fatalf("%s: partition 0 has no leader", phase)
		}
		before := mustProduct(t, cl, c.URL(leader), product.ID)
		for _, peer := range without(c.IDs(), leader) {
			if phase == "cannot send" {
				c.CutOneWay(leader, peer)
			} else {
				c.CutOneWay(peer, leader)
			}
		}
		acked := keyedHoldsUntilServed(t, c, cl, product.ID, "oneway-"+phase[7:], sendFor, servePatience)
		for _, peer := range without(c.IDs(), leader) {
			c.Link(leader, peer).Heal()
		}
		t.Logf("%s: leader node %d; %d holds acknowledged; partition 0 now led by node %d", phase, leader, len(acked), c.Leader(0))
		if err := c.WaitReady(DefaultReadyTimeout); err != nil {
			t.Fatalf("%s: after healing: %v", phase, err)
		}
		c.WaitConverged(convergeTimeout)
		checkHoldsExactly(t, c, cl, before, acked)
		if t.Failed() {
			return
		}
	}
}

// TestSlowLinks: with 40 ms added to every Raft link both ways, the
// cluster still serves: keyed holds through every node are acknowledged,
// the replicas converge over the slow links, and the product reserves
// exactly the acknowledged units.
func TestSlowLinks(t *testing.T) {
	const linkDelay = 40 * time.Millisecond
	c := startCluster(t, true)
	cl := newClient(t, requestTimeout)
	product := productIn(c, 1)
	before := mustProduct(t, cl, c.URL(1), product.ID)
	for i := 1; i <= 3; i++ {
		for j := i + 1; j <= 3; j++ {
			c.Link(i, j).Delay(linkDelay)
		}
	}
	start := time.Now()
	acked := keyedHoldsUntilServed(t, c, cl, product.ID, "slow", 2*time.Second, 8*time.Second)
	t.Logf("%d holds acknowledged over links delayed by %v in %v", len(acked), linkDelay, time.Since(start).Round(time.Millisecond))
	c.WaitConverged(convergeTimeout)
	// The check reads through every node; each read waits for a quorum
	// round trip, so it runs on healed links.
	for i := 1; i <= 3; i++ {
		for j := i + 1; j <= 3; j++ {
			c.Link(i, j).Heal()
		}
	}
	checkHoldsExactly(t, c, cl, before, acked)
}
