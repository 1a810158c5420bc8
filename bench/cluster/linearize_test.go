package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/flashsale/flashsale/bench/linearize"
)

// The linearizability run's shape: few clients, a few hundred requests,
// a handful of leader kills. Porcupine's search grows with the requests
// whose outcome is unknown, so the clients back off after each one.
const (
	linClients      = 6
	linOps          = 3000                  // at most; the run ends once the kills are done
	linThink        = 10 * time.Millisecond // mean pause of a client before a request
	linKills        = 3
	linLoadBefore   = 800 * time.Millisecond // load before each kill
	linDown         = 600 * time.Millisecond // the killed node stays down this long
	linDuration     = 90 * time.Second       // the run ends after this, ops spent or not
	linBackoff      = 200 * time.Millisecond // pause after a 503 or no answer
	linCheckTimeout = 90 * time.Second
)

// linCatalog is small on purpose, one product per partition: stock runs out,
// so 409s and replayed 409s happen too.
var linCatalog = []linearize.Product{
	{ID: 1, Name: "Widget", PriceCents: 500, TotalStock: 14, MaxPerHold: 3},
	{ID: 2, Name: "Sneaker", PriceCents: 2000, TotalStock: 8, MaxPerHold: 2},
	{ID: 3, Name: "Gift card", PriceCents: 100, TotalStock: 40, MaxPerHold: 4},
}

// TestLinearizableAcrossFailovers: concurrent clients send holds (mostly
// keyed), orders, payment webhooks (and replays of their keys) and reads,
// each to a random live node, while the leader of a random partition is
// killed with SIGKILL and restarted, linKills times. Every request is
// recorded with its call and return time; the history, completed by
// bench/linearize's sweep of reads, must be linearizable against
// bench/linearize's sequential model of docs/API.md, per product.
//
// A write answered 503 unavailable is recorded as unanswered: docs/API.md
// promises that such an answer is never "later undone", but a proposal
// that a leader appended before losing its leadership may still be
// committed by its successor, so the 503 proves nothing about the effect.
// Unanswered requests are not tied to the death of a node (Recorder's
// ServerDied): a forwarded or replicated request can still take effect
// after the node the client spoke to is gone. Reads answered 503 are left
// out; they change nothing.
func TestLinearizableAcrossFailovers(t *testing.T) { linearizableRun(t, linKill) }

// TestLinearizableAcrossPartitions: the same, but instead of being killed,
// the leader of a random partition has all its Raft links drop everything
// for linIsolated, linKills times, while clients keep sending to it too.
func TestLinearizableAcrossPartitions(t *testing.T) { linearizableRun(t, linIsolate) }

// TestLinearizeCatchesUncommittedAnswers: the same clients against a
// cluster whose leaders answer without replicating
// (--fault-ack-uncommitted); after the load every leader is killed and
// restarted, losing what it acknowledged. The checker must find the
// history not linearizable, so that its verdict on a correct cluster means
// something. (No fault during the load: every request is answered, so the
// search that proves the history illegal is quick.)
func TestLinearizeCatchesUncommittedAnswers(t *testing.T) { linearizableRun(t, linFaulty) }

// The faults of a linearizability run.
const (
	linKill    = "kill -9 and restart"
	linIsolate = "cut off and heal"
	linFaulty  = "leaders that answer without replicating, all killed after the load"
)

// linIsolated is how long a cut-off leader stays cut off: past the 2 s in
// which it must stop acknowledging, and long enough for a new election.
const linIsolated = 2500 * time.Millisecond

func linearizableRun(t *testing.T, fault string) {
	rng := rngFor(t)
	seedFile, _ := json.Marshal(linCatalog)
	flags := []string{"--hold-ttl", "1h", "--order-ttl", "0"}
	if fault == linFaulty {
		flags = append(flags, "--fault-ack-uncommitted")
	}
	c := Start(t, Options{Seed: seedFile, Proxies: fault == linIsolate, ExtraFlags: flags})

	var alive atomic.Value
	alive.Store(c.IDs())
	var baseMu sync.Mutex
	baseRng := rand.New(rand.NewSource(rng.Int63()))
	base := func() string {
		ids := alive.Load().([]int)
		baseMu.Lock()
		defer baseMu.Unlock()
		return c.URL(ids[baseRng.Intn(len(ids))])
	}
	lc := linearize.NewClient(base, requestTimeout)
	defer lc.CloseIdle()
	rec := linearize.NewRecorder()
	clock := time.Now() // the driver's time base; the recorder's started a moment before

	ctx, cancel := context.WithTimeout(context.Background(), linDuration)
	defer cancel()
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	k := &linKnowledge{}
	var budget atomic.Int64
	budget.Store(linOps)
	var wg sync.WaitGroup
	for id := 0; id < linClients; id++ {
		d := &linDriver{id: id, rng: rand.New(rand.NewSource(rng.Int63())), k: k, lc: lc, rec: rec, clock: clock}
		wg.Go(func() {
			for loadCtx.Err() == nil && budget.Add(-1) >= 0 {
				time.Sleep(time.Duration(d.rng.Int63n(int64(2 * linThink))))
				d.step()
			}
		})
	}
	for i := 0; i < linKills && ctx.Err() == nil && fault != linFaulty; i++ {
		time.Sleep(linLoadBefore)
		p := rng.Intn(c.Partitions())
		leader := c.Leader(p)
		if leader == 0 {
			t.Fatalf("kill %d: partition %d has no leader", i+1, p)
		}
		if fault == linKill {
			c.Kill9(leader)
			alive.Store(without(c.IDs(), leader))
			time.Sleep(linDown)
			c.Restart(leader)
			alive.Store(c.IDs())
		} else {
			for _, link := range c.LinksOf(leader) {
				link.Drop()
			}
			time.Sleep(linIsolated)
			for _, link := range c.LinksOf(leader) {
				link.Heal()
			}
			if err := c.WaitReady(DefaultReadyTimeout); err != nil {
				t.Fatalf("after healing node %d's links: %v", leader, err)
			}
		}
		t.Logf("fault %d: node %d (leader of partition %d): %s, after %d operations", i+1, leader, p, fault, rec.Len())
	}
	time.Sleep(linLoadBefore) // some load on the healed cluster too
	stopLoad()
	wg.Wait()
	if fault == linFaulty {
		for p := 0; p < c.Partitions(); p++ {
			if leader := c.Leader(p); leader != 0 {
				c.Kill9(leader)
				c.Restart(leader)
			}
		}
	}
	if budget.Load() <= 0 {
		t.Errorf("the request budget (%d) ran out before the kills were done: raise linOps or linThink", linOps)
	}
	cancel()
	if err := c.WaitReady(DefaultReadyTimeout); err != nil {
		t.Fatal(err)
	}
	if err := linearize.Sweep(lc, rec, linCatalog, linClients, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	history := withoutUnavailableReads(rec.History())
	res := linearize.Check(linCatalog, history, linearize.Options{Timeout: linCheckTimeout})
	unknown := 0
	for _, op := range history {
		if op.Output.(linearize.Output).Unknown {
			unknown++
		}
	}
	t.Logf("%s (%d with unknown outcome)\n%s", res, unknown, linearize.Summary(history))
	if fault == linFaulty {
		if res.Verdict != porcupine.Illegal {
			t.Errorf("the checker did not prove illegal the history of a cluster that lost what it acknowledged: %s", res)
		}
		return
	}
	if !res.OK() {
		t.Errorf("the cluster's history across %d leader faults (%s) is not linearizable:\n%s", linKills, fault, res.Report)
	}
	c.WaitConverged(convergeTimeout)
}

// withoutUnavailableReads drops reads answered 503 unavailable (the sweep's
// retries among them): they changed nothing, and the model knows 503 only
// as overloaded or shutting_down.
func withoutUnavailableReads(h []porcupine.Operation) []porcupine.Operation {
	out := h[:0:0]
	for _, op := range h {
		in, o := op.Input.(linearize.Input), op.Output.(linearize.Output)
		read := in.Kind == linearize.KindGetProduct || in.Kind == linearize.KindGetHold || in.Kind == linearize.KindGetOrder
		if read && o.HTTP == 503 && o.Error == "unavailable" {
			continue
		}
		out = append(out, op)
	}
	return out
}

// linKnowledge is what the drivers learned, shared between them.
type linKnowledge struct {
	mu       sync.Mutex
	tokens   []string
	orders   []uint64
	holdKeys []linearize.Input // first request under each hold key
	hookKeys []linearize.Input // first request under each webhook key
	nextKey  int
}

// linDriver is one sequential client of the run. It keeps bench/linearize's
// assumptions: a hold key is only sent with one product, a webhook key with
// one order id.
type linDriver struct {
	id    int
	rng   *rand.Rand
	k     *linKnowledge
	lc    *linearize.Client
	rec   *linearize.Recorder
	clock time.Time
	retry *linearize.Input // a write whose outcome is unknown, sent again next
}

func (d *linDriver) now() int64 { return int64(time.Since(d.clock)) }

// step sends one request and records it: an unanswered write, and one
// answered 503 unavailable, with an unknown outcome; an unanswered read, or
// one answered 503, not at all.
func (d *linDriver) step() {
	in := d.next()
	call := d.now()
	out, meta, sent := d.lc.Do(in)
	ret := d.now()
	if !sent {
		time.Sleep(linBackoff)
		d.retry = &in
		return
	}
	read := in.Kind == linearize.KindGetProduct || in.Kind == linearize.KindGetHold || in.Kind == linearize.KindGetOrder
	unavailable := out.HTTP == 503 && out.Error == "unavailable"
	if out.Unknown || unavailable {
		time.Sleep(linBackoff)
		if read {
			return
		}
		out, ret = linearize.Unanswered, linearize.Never
		if in.Key != "" || in.Kind == linearize.KindOrder {
			d.retry = &in // a careful client retries; its replay tells what happened
		}
	}
	d.rec.Record(porcupine.Operation{ClientId: d.id, Input: in, Call: call, Output: out, Return: ret, Metadata: meta})
	d.learn(in, out)
}

func (d *linDriver) next() linearize.Input {
	if in := d.retry; in != nil {
		d.retry = nil
		return *in
	}
	switch r := d.rng.Intn(100); {
	case r < 40:
		return d.hold()
	case r < 60:
		return linearize.Input{Kind: linearize.KindOrder, Token: d.token()}
	case r < 80:
		return d.webhook()
	case r < 88:
		return linearize.Input{Kind: linearize.KindGetProduct, ProductID: linCatalog[d.rng.Intn(len(linCatalog))].ID}
	case r < 94:
		return linearize.Input{Kind: linearize.KindGetHold, Token: d.token()}
	default:
		return linearize.Input{Kind: linearize.KindGetOrder, OrderID: d.orderID()}
	}
}

func (d *linDriver) newKey(kind string) string {
	d.k.mu.Lock()
	defer d.k.mu.Unlock()
	d.k.nextKey++
	return fmt.Sprintf("lin-%s-%d", kind, d.k.nextKey)
}

// hold: mostly under a new key (a replay then tells what an unanswered
// one did), sometimes a replay of a known key, sometimes unkeyed.
func (d *linDriver) hold() linearize.Input {
	p := linCatalog[d.rng.Intn(len(linCatalog))]
	in := linearize.Input{Kind: linearize.KindHold, ProductID: p.ID, Qty: 1 + d.rng.Int63n(p.MaxPerHold)}
	switch r := d.rng.Intn(100); {
	case r < 15:
		return in
	case r < 85:
		in.Key = d.newKey("h")
		d.k.mu.Lock()
		d.k.holdKeys = append(d.k.holdKeys, in)
		d.k.mu.Unlock()
		return in
	}
	d.k.mu.Lock()
	defer d.k.mu.Unlock()
	if len(d.k.holdKeys) == 0 {
		return in
	}
	return d.k.holdKeys[d.rng.Intn(len(d.k.holdKeys))]
}

func (d *linDriver) token() string {
	d.k.mu.Lock()
	defer d.k.mu.Unlock()
	if len(d.k.tokens) == 0 {
		return "no-such-hold"
	}
	return d.k.tokens[d.rng.Intn(len(d.k.tokens))]
}

func (d *linDriver) orderID() uint64 {
	d.k.mu.Lock()
	defer d.k.mu.Unlock()
	if len(d.k.orders) == 0 {
		return 1
	}
	return d.k.orders[d.rng.Intn(len(d.k.orders))]
}

// webhook: a new key for a known order, or a replay of a known key.
func (d *linDriver) webhook() linearize.Input {
	if d.rng.Intn(100) < 25 {
		d.k.mu.Lock()
		if n := len(d.k.hookKeys); n > 0 {
			in := d.k.hookKeys[d.rng.Intn(n)]
			d.k.mu.Unlock()
			return in
		}
		d.k.mu.Unlock()
	}
	in := linearize.Input{Kind: linearize.KindWebhook, OrderID: d.orderID(), Key: d.newKey("w"), Success: d.rng.Intn(100) < 60}
	if !in.Success {
		in.Reason = "card_declined"
	}
	d.k.mu.Lock()
	d.k.hookKeys = append(d.k.hookKeys, in)
	d.k.mu.Unlock()
	return in
}

func (d *linDriver) learn(in linearize.Input, out linearize.Output) {
	if out.Unknown || out.HTTP >= 300 {
		return
	}
	d.k.mu.Lock()
	defer d.k.mu.Unlock()
	if in.Kind == linearize.KindHold && out.Token != "" && !out.Replayed {
		d.k.tokens = append(d.k.tokens, out.Token)
	}
	if in.Kind == linearize.KindOrder && out.HTTP == 201 {
		d.k.orders = append(d.k.orders, out.OrderID)
	}
}
