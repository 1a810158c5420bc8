package linearize

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Workload is a seeded random mix of every request of the API, sent by
// concurrent clients that share what they learn (hold tokens, order ids,
// idempotency keys), so that they order each other's holds, pay each
// other's orders, replay and reuse each other's keys, and send webhooks for
// order ids not created yet.
type Workload struct {
	Catalog  []Product
	Clients  int           // concurrent clients (goroutines)
	Ops      int           // requests sent in all; the run ends when they are
	Duration time.Duration // ... or when this much time has passed
	Seed     uint64
	// KeyPrefix starts every idempotency key, so that runs on one server
	// never share keys.
	KeyPrefix string
	// Think, if set, is the mean pause of a client before each request, so
	// that a run spans time enough for holds and orders to expire.
	Think time.Duration
}

// Run drives the workload through c, recording into rec, until the
// request budget or the duration is spent or ctx is done. While the server
// refuses connections (down for a restart), clients wait and retry.
func (w Workload) Run(ctx context.Context, c *Client, rec *Recorder) {
	ctx, cancel := context.WithTimeout(ctx, w.Duration)
	defer cancel()
	k := &knowledge{}
	var budget atomic.Int64
	budget.Store(int64(w.Ops))
	var wg sync.WaitGroup
	for id := range w.Clients {
		wg.Go(func() {
			cl := client{w: w, id: id, rng: rand.New(rand.NewPCG(w.Seed, uint64(id))), k: k, c: c, rec: rec}
			for ctx.Err() == nil && budget.Add(-1) >= 0 {
				if w.Think > 0 {
					time.Sleep(time.Duration(cl.rng.Int64N(int64(2 * w.Think))))
				}
				if !cl.step() {
					budget.Add(1)
					select {
					case <-ctx.Done():
					case <-time.After(5 * time.Millisecond):
					}
				}
			}
		})
	}
	wg.Wait()
}

// knowledge is what the clients have learned, shared between them.
type knowledge struct {
	mu         sync.Mutex
	tokens     []string
	orders     []uint64
	maxOrderID uint64
	holdKeys   []Input // a key's first request: key, product, qty
	hookKeys   []Input // key, order id, status, reason
	nextKey    int
}

type client struct {
	w     Workload
	id    int
	rng   *rand.Rand
	k     *knowledge
	c     *Client
	rec   *Recorder
	retry *Input // a request to send again, as a careful client would
}

// step sends one random request and learns from its answer. It reports
// false when the request was never sent. A request that was never sent,
// and an order or keyed request that got no answer (the server may have
// died), is sent again next, so that replays across a restart are tested.
func (cl *client) step() bool {
	if in := cl.retry; in != nil {
		cl.retry = nil
		return cl.send(*in)
	}
	r := cl.rng.IntN(100)
	if r < 6 {
		ids := make([]uint64, len(cl.w.Catalog))
		for i, p := range cl.w.Catalog {
			ids[i] = p.ID
		}
		return cl.rec.DoProducts(cl.c, cl.id, ids)
	}
	var in Input
	switch {
	case r < 36:
		in = cl.hold()
	case r < 54:
		in = cl.order()
	case r < 76:
		in = cl.webhook()
	case r < 84:
		in = Input{Kind: KindGetProduct, ProductID: cl.product().ID}
	case r < 92:
		in = Input{Kind: KindGetHold, Token: cl.token()}
	default:
		in = Input{Kind: KindGetOrder, OrderID: cl.orderID()}
	}
	return cl.send(in)
}

func (cl *client) send(in Input) bool {
	out, sent := cl.rec.Do(cl.c, cl.id, in)
	switch {
	case !sent:
		cl.retry = &in
	case out.Unknown && (in.Kind == KindOrder || in.Key != ""):
		cl.retry = &in
	default:
		cl.learn(in, out)
	}
	return sent
}

func (cl *client) product() Product { return cl.w.Catalog[cl.rng.IntN(len(cl.w.Catalog))] }

func (cl *client) newKey(kind string) string {
	cl.k.mu.Lock()
	defer cl.k.mu.Unlock()
	cl.k.nextKey++
	return fmt.Sprintf("%s%s-%d", cl.w.KeyPrefix, kind, cl.k.nextKey)
}

// hold: mostly a valid quantity of a catalog product; sometimes an unknown
// product or a quantity above max_per_hold (never under a key); under a
// new key, or a known key again with the same body (a replay) or another
// quantity of the same product (reused key).
func (cl *client) hold() Input {
	p := cl.product()
	in := Input{Kind: KindHold, ProductID: p.ID, Qty: 1 + cl.rng.Int64N(p.MaxPerHold)}
	switch r := cl.rng.IntN(100); {
	case r < 3:
		in.ProductID = 999
		return in
	case r < 6:
		in.Qty = p.MaxPerHold + 1
		return in
	case r < 40:
		return in
	case r < 75:
		in.Key = cl.newKey("h")
		cl.k.mu.Lock()
		cl.k.holdKeys = append(cl.k.holdKeys, in)
		cl.k.mu.Unlock()
		return in
	}
	cl.k.mu.Lock()
	defer cl.k.mu.Unlock()
	if len(cl.k.holdKeys) == 0 {
		return in
	}
	first := cl.k.holdKeys[cl.rng.IntN(len(cl.k.holdKeys))]
	in.ProductID, in.Key, in.Qty = first.ProductID, first.Key, first.Qty
	if cl.rng.IntN(100) < 30 {
		max := cl.w.Catalog[0].MaxPerHold
		for _, p := range cl.w.Catalog {
			if p.ID == first.ProductID {
				max = p.MaxPerHold
			}
		}
		in.Qty = first.Qty%max + 1 // another valid quantity (the same if max is 1)
	}
	return in
}

func (cl *client) token() string {
	cl.k.mu.Lock()
	defer cl.k.mu.Unlock()
	if len(cl.k.tokens) == 0 || cl.rng.IntN(100) < 3 {
		return fmt.Sprintf("bogus-%d", cl.rng.IntN(1000))
	}
	return cl.k.tokens[cl.rng.IntN(len(cl.k.tokens))]
}

// orderID: a known order, or one a little past the highest seen.
func (cl *client) orderID() uint64 {
	cl.k.mu.Lock()
	defer cl.k.mu.Unlock()
	if len(cl.k.orders) == 0 || cl.rng.IntN(100) < 35 {
		return cl.k.maxOrderID + 1 + uint64(cl.rng.IntN(3))
	}
	return cl.k.orders[cl.rng.IntN(len(cl.k.orders))]
}

func (cl *client) order() Input { return Input{Kind: KindOrder, Token: cl.token()} }

var reasons = []string{"", "card_declined", "insufficient_funds"}

// webhook: a new key for a known or future order, or a known key again with
// the same body (a replay) or another body for the same order (reused key).
func (cl *client) webhook() Input {
	if cl.rng.IntN(100) < 30 {
		cl.k.mu.Lock()
		if n := len(cl.k.hookKeys); n > 0 {
			in := cl.k.hookKeys[cl.rng.IntN(n)]
			cl.k.mu.Unlock()
			if cl.rng.IntN(100) < 35 {
				in.Success = !in.Success
				in.Reason = ""
			}
			return in
		}
		cl.k.mu.Unlock()
	}
	in := Input{Kind: KindWebhook, OrderID: cl.orderID(), Key: cl.newKey("w"), Success: cl.rng.IntN(100) < 60}
	if !in.Success {
		in.Reason = reasons[cl.rng.IntN(len(reasons))]
	}
	cl.k.mu.Lock()
	cl.k.hookKeys = append(cl.k.hookKeys, in)
	cl.k.mu.Unlock()
	return in
}

func (cl *client) learn(in Input, out Output) {
	k := cl.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if out.Unknown || out.HTTP >= 300 {
		return
	}
	if in.Kind == KindHold && out.Token != "" && !out.Replayed {
		k.tokens = append(k.tokens, out.Token)
	}
	if (in.Kind == KindOrder && out.HTTP == 201) || (in.Kind == KindGetHold && out.OrderID != 0) {
		if out.OrderID > k.maxOrderID {
			k.maxOrderID = out.OrderID
		}
		k.orders = append(k.orders, out.OrderID)
	}
}
