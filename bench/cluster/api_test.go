package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/bench/serverproc"
)

// refusalTimeout bounds how long a node that must refuse to start may take
// to exit.
const refusalTimeout = 10 * time.Second

// TestWrongClusterFileRefused: once a cluster has started, a node started
// with a cluster file of another partition count, with a node id the file
// does not know, or on another node's data directory, exits with code 2
// and says why; afterwards the nodes start normally on their own data
// directories (the refusals changed nothing).
func TestWrongClusterFileRefused(t *testing.T) {
	c := startCluster(t, false)
	c.Kill9(1)
	c.Kill9(2)

	changed := c.ReadFile()
	changed.Partitions++
	changedPath := filepath.Join(t.TempDir(), "cluster-changed.json")
	WriteFile(t, changedPath, changed)

	cases := []struct {
		name    string
		addr    string
		dataDir string
		flags   []string
	}{
		{"partition count changed", c.HTTPAddr(1), c.DataDir(1), replaceFlag(c.Flags(1), "--cluster", changedPath)},
		{"unknown node id", c.HTTPAddr(1), t.TempDir(), replaceFlag(c.Flags(1), "--node-id", "9")},
		{"unknown node id on a member's data directory", c.HTTPAddr(1), c.DataDir(1), replaceFlag(c.Flags(1), "--node-id", "9")},
		{"another node's data directory", c.HTTPAddr(1), c.DataDir(2), c.Flags(1)},
	}
	for _, tc := range cases {
		s := serverproc.LaunchAt(t, c.Bin(), tc.addr, tc.dataDir, tc.flags...)
		code, err := s.WaitExit(refusalTimeout)
		if err != nil {
			s.Kill9()
			t.Errorf("%s: still running after %v, want exit code 2", tc.name, refusalTimeout)
			continue
		}
		if code != 2 || strings.TrimSpace(s.Output()) == "" {
			t.Errorf("%s: exit code %d, output %q; want code 2 and a message", tc.name, code, s.Output())
			continue
		}
		t.Logf("%s: exit code 2: %s", tc.name, lastLine(s.Output()))
	}
	c.Restart(1)
	c.Restart(2)
	c.WaitConverged(convergeTimeout)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestNoMajority503: with two of three nodes killed, the survivor answers
// holds and product reads of every partition with 503 unavailable and
// Retry-After: 1, each within 2 s (plus slack), and /healthz with 503;
// once a second node is back, holds are acknowledged again.
func TestNoMajority503(t *testing.T) {
	c := startCluster(t, false)
	cl := newClient(t, 2*unavailableWithin)
	c.Kill9(2)
	c.Kill9(3)
	survivor := c.URL(1)
	for p := 0; p < c.Partitions(); p++ {
		product := productIn(c, p)
		_, hold, err := cl.hold(survivor, product.ID, 1, "")
		if err != nil {
			t.Errorf("hold on product %d (partition %d) without a majority: no answer: %v", product.ID, p, err)
		} else if hold.Status != http.StatusServiceUnavailable || hold.ErrorCode() != "unavailable" || hold.RetryAfter != "1" || hold.Took > unavailableWithin {
			t.Errorf("hold on product %d (partition %d) without a majority: %v, Retry-After %q, after %v; want 503 unavailable, Retry-After: 1, within %v",
				product.ID, p, hold, hold.RetryAfter, hold.Took, unavailableWithin)
		}
		get, err := cl.Do(survivor, "GET", fmt.Sprintf("/api/products/%d", product.ID), "", "")
		if err != nil {
			t.Errorf("GET product %d without a majority: no answer: %v", product.ID, err)
		} else if get.Status != http.StatusServiceUnavailable || get.ErrorCode() != "unavailable" || get.RetryAfter != "1" || get.Took > unavailableWithin {
			t.Errorf("GET product %d (partition %d) without a majority: %v, Retry-After %q, after %v; want 503 unavailable, Retry-After: 1, within %v",
				product.ID, p, get, get.RetryAfter, get.Took, unavailableWithin)
		}
	}
	if r, err := cl.Do(survivor, "GET", "/healthz", "", ""); err != nil || r.Status != http.StatusServiceUnavailable {
		t.Errorf("GET /healthz of the survivor without a majority: %v %v, want 503", r, err)
	}
	c.Restart(2)
	r, err := retryUnavailable(5*time.Second, func() (reply, error) {
		_, r, err := cl.hold(survivor, productIn(c, 0).ID, 1, "")
		return r, err
	})
	if err != nil || r.Status != http.StatusCreated {
		t.Errorf("hold once nodes 1 and 2 are up: %v %v, want 201", r, err)
	}
}

// TestForwardedAnswerIsByteIdentical: a follower relays the leader's answer
// unchanged. The same GET of a product (and of an unknown one) through the
// leader and through each follower gives the same status, Content-Type and
// body; a refused hold (422) too; and a keyed hold posted through a
// follower replays byte for byte through the leader and the other follower.
func TestForwardedAnswerIsByteIdentical(t *testing.T) {
	c := startCluster(t, false)
	cl := newClient(t, requestTimeout)
	for p := 0; p < c.Partitions(); p++ {
		product := productIn(c, p)
		leader := c.Leader(p)
		if leader == 0 {
			t.Fatalf("partition %d has no leader", p)
		}
		followers := without(c.IDs(), leader)
		requests := []struct{ method, path, body string }{
			{"GET", fmt.Sprintf("/api/products/%d", product.ID), ""},
			{"GET", fmt.Sprintf("/api/products/%d", product.ID+int64(c.Partitions())*1000), ""}, // unknown, same partition
			{"POST", "/api/holds", fmt.Sprintf(`{"product_id":%d,"qty":%d}`, product.ID, product.MaxPerHold+1)},
		}
		for _, rq := range requests {
			send := func(id int) func() (reply, error) {
				return func() (reply, error) { return cl.Do(c.URL(id), rq.method, rq.path, rq.body, "") }
			}
			want, err := retryUnavailable(5*time.Second, send(leader))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range followers {
				got, err := retryUnavailable(5*time.Second, send(f))
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != want.Status || !bytes.Equal(got.Body, want.Body) || got.Header.Get("Content-Type") != want.Header.Get("Content-Type") {
					t.Errorf("%s %s %s: leader node %d answered %v (%s), follower node %d %v (%s)", rq.method, rq.path, rq.body,
						leader, want, want.Header.Get("Content-Type"), f, got, got.Header.Get("Content-Type"))
				}
			}
		}
		key := fmt.Sprintf("forwarded-%d", p)
		_, first := mustHold(t, cl, c.URL(followers[0]), product.ID, 1, key)
		for _, id := range []int{leader, followers[1], followers[0]} {
			_, again, err := cl.hold(c.URL(id), product.ID, 1, key)
			if err != nil || again.Status != first.Status || !bytes.Equal(again.Body, first.Body) || !again.Replayed {
				t.Errorf("replay of key %s through node %d: %v (replayed %v) %v, want %v replayed", key, id, again, again.Replayed, err, first)
			}
		}
	}
}

// TestIdempotentReplayAcrossFailover: a keyed hold is acknowledged, the
// leader of its partition is killed, and the same key through another node
// gets the same answer, byte for byte and marked replayed, with the stock
// taken once; likewise a keyed payment webhook across a second failover,
// with the units sold once.
func TestIdempotentReplayAcrossFailover(t *testing.T) {
	c := startCluster(t, false)
	cl := newClient(t, requestTimeout)
	product := productIn(c, 1)
	p := c.PartitionOfProduct(product.ID)
	leader := c.Leader(p)
	if leader == 0 {
		t.Fatalf("partition %d has no leader", p)
	}
	h, first := mustHold(t, cl, c.URL(leader), product.ID, 2, "failover-hold")
	before := mustProduct(t, cl, c.URL(leader), product.ID)
	c.Kill9(leader)
	other := without(c.IDs(), leader)[0]
	again, err := retryUnavailable(5*time.Second, func() (reply, error) {
		_, r, err := cl.hold(c.URL(other), product.ID, 2, "failover-hold")
		return r, err
	})
	if err != nil || again.Status != first.Status || !bytes.Equal(again.Body, first.Body) || !again.Replayed {
		t.Errorf("keyed hold after kill -9 of leader node %d, through node %d: %v (replayed %v) %v; want %v replayed",
			leader, other, again, again.Replayed, err, first)
	}
	if after := mustProduct(t, cl, c.URL(other), product.ID); after != before {
		t.Errorf("product %d was %+v after the hold, %+v after its replay across the failover", product.ID, before, after)
	}
	c.Restart(leader)

	o, _ := mustOrder(t, cl, c.URL(other), h.HoldToken)
	body := webhookBody(o.OrderID, true)
	paid, err := retryUnavailable(5*time.Second, func() (reply, error) {
		return cl.Do(c.URL(other), "POST", "/api/payments/webhook", body, "failover-pay")
	})
	if err != nil || paid.Status != http.StatusOK {
		t.Fatalf("webhook %s: %v %v", body, paid, err)
	}
	sold := mustProduct(t, cl, c.URL(other), product.ID)
	op := int(o.OrderID % int64(c.Partitions()))
	orderLeader := c.Leader(op)
	c.Kill9(orderLeader)
	via := without(c.IDs(), orderLeader)[0]
	replay, err := retryUnavailable(5*time.Second, func() (reply, error) {
		return cl.Do(c.URL(via), "POST", "/api/payments/webhook", body, "failover-pay")
	})
	if err != nil || replay.Status != paid.Status || !bytes.Equal(replay.Body, paid.Body) || !replay.Replayed {
		t.Errorf("webhook replay after kill -9 of node %d (leader of partition %d), through node %d: %v (replayed %v) %v; want %v replayed",
			orderLeader, op, via, replay, replay.Replayed, err, paid)
	}
	if now := mustProduct(t, cl, c.URL(via), product.ID); now != sold || sold.SoldStock != before.SoldStock+2 {
		t.Errorf("product %d: %+v before the hold's order was paid, %+v after, %+v after the replay", product.ID, before, sold, now)
	}
	c.Restart(orderLeader)
	c.WaitConverged(convergeTimeout)
}

// TestWebhookQueuedInOrderPartition: a payment webhook for an order id
// that does not exist yet is answered 202 queued (docs/API.md), by whichever
// node it reaches; when that order is created, the 201 of POST /api/orders
// already shows it paid, every node reads it paid, and the units are sold.
// The webhook's key replays its 202 byte for byte afterwards.
func TestWebhookQueuedInOrderPartition(t *testing.T) {
	const ahead = 5 // webhooks are queued for the next this many ids of the partition
	c := startCluster(t, false)
	cl := newClient(t, requestTimeout)
	product := productIn(c, 2)
	parts := int64(c.Partitions())
	h, _ := mustHold(t, cl, c.URL(1), product.ID, 1, "")
	o1, _ := mustOrder(t, cl, c.URL(2), h.HoldToken)
	if o1.OrderID%parts != product.ID%parts {
		t.Fatalf("order %d of product %d is not in the product's partition (mod %d)", o1.OrderID, product.ID, parts)
	}
	queued := map[int64]reply{}
	for k := int64(1); k <= ahead; k++ {
		id := o1.OrderID + k*parts
		node := 1 + int(k)%3
		r, err := retryUnavailable(5*time.Second, func() (reply, error) {
			return cl.Do(c.URL(node), "POST", "/api/payments/webhook", webhookBody(id, true), "queued-"+strconv.FormatInt(id, 10))
		})
		var a webhookJSON
		if err == nil {
			err = json.Unmarshal(r.Body, &a)
		}
		if err != nil || r.Status != http.StatusAccepted || a.OrderID != id || a.Status != "queued" {
			t.Fatalf("webhook for the not-yet-existing order %d through node %d: %v %v; want 202 queued", id, node, r, err)
		}
		queued[id] = r
	}
	before := mustProduct(t, cl, c.URL(3), product.ID)
	hits := 0
	for i := 0; i < ahead; i++ {
		h, _ := mustHold(t, cl, c.URL(1+i%3), product.ID, 1, "")
		o, r := mustOrder(t, cl, c.URL(1+(i+1)%3), h.HoldToken)
		if r.Status != http.StatusCreated {
			t.Fatalf("first POST /api/orders for a new hold: %v, want 201", r)
		}
		if _, ok := queued[o.OrderID]; !ok {
			t.Logf("order %d: no webhook was queued for it", o.OrderID)
			if o.Status != "pending" {
				t.Errorf("order %d was created %s, but no webhook was sent for it", o.OrderID, o.Status)
			}
			continue
		}
		hits++
		if o.Status != "paid" {
			t.Errorf("order %d was created %s; a success webhook was queued for it (202), so its 201 must show paid: %v", o.OrderID, o.Status, r)
		}
		for _, id := range c.IDs() {
			var got orderJSON
			r, err := cl.Do(c.URL(id), "GET", fmt.Sprintf("/api/orders/%d", o.OrderID), "", "")
			if err == nil {
				err = json.Unmarshal(r.Body, &got)
			}
			if err != nil || got.Status != "paid" {
				t.Errorf("order %d through node %d: %v %v, want paid", o.OrderID, id, r, err)
			}
		}
	}
	if hits == 0 {
		t.Fatalf("none of %d new orders of product %d got one of the ids %d+k*%d (k=1..%d) that webhooks were queued for; cannot check the queue",
			ahead, product.ID, o1.OrderID, parts, ahead)
	}
	if after := mustProduct(t, cl, c.URL(2), product.ID); after.SoldStock != before.SoldStock+int64(hits) {
		t.Errorf("product %d: sold_stock %d before, %d after %d orders paid by queued webhooks", product.ID, before.SoldStock, after.SoldStock, hits)
	}
	for id, first := range queued {
		again, err := cl.Do(c.URL(1+int(id)%3), "POST", "/api/payments/webhook", webhookBody(id, true), "queued-"+strconv.FormatInt(id, 10))
		if err != nil || again.Status != first.Status || !bytes.Equal(again.Body, first.Body) || !again.Replayed {
			t.Errorf("replay of the queued webhook for order %d: %v (replayed %v) %v, want %v replayed", id, again, again.Replayed, err, first)
		}
	}
	c.WaitConverged(convergeTimeout)
}
