package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// hotTokensKeptMax bounds the hold tokens kept for the expiry check; a server
// that grants far beyond its stock is caught long before this.
const hotTokensKeptMax = 1_000_000

// grantsStock is the stock of the product the grants workload creates: more
// than any run of this harness can hold (10^9 holds at 100,000/s take almost
// three hours), so that every answer is a 201 and the granted phase is
// measured alone.
const grantsStock = 1_000_000_000

// hotWorkload is the flash sale spike: every worker races to hold one unit
// of one product until it sells out, then keeps hammering. As the grants
// workload it holds units of a product that never sells out.
type hotWorkload struct {
	cfg       Config
	stock     int64 // of the product it creates
	productID int64
	before    Product
	start     time.Time
	holdPath  []byte
	holdBody  []byte
	runID     string // names the idempotency keys of --keyed holds

	granted         atomic.Int64
	unknown         atomic.Int64
	soldOutNanos    atomic.Int64 // since start; 0 = not yet
	lastGrantNanos  atomic.Int64
	grantsAtSellOut atomic.Int64
	afterAnswers    atomic.Int64 // answers to requests sent after the sell-out was seen
	afterRejects    atomic.Int64 // of which 409

	tokensMu sync.Mutex
	tokens   tokenArena // guarded by tokensMu
}

// newHotWorkload returns the hot workload; a product it creates has stock
// units.
func newHotWorkload(cfg Config, stock int64) *hotWorkload {
	return &hotWorkload{cfg: cfg, stock: stock}
}

// setup picks or creates the product and reads its stock.
func (h *hotWorkload) setup(_ context.Context, env *runEnv) error {
	h.runID = env.runID
	h.productID = h.cfg.ProductID
	if h.productID <= 0 {
		name := fmt.Sprintf("flashbench %s %s", h.cfg.Workload, env.runID)
		p, err := env.control.createProduct(name, 4999, h.stock, 1)
		if err != nil {
			return fmt.Errorf("%s: %w", h.cfg.Workload, err)
		}
		h.productID = p.ID
	}
	p, err := env.control.getProduct(h.productID)
	if err != nil {
		return fmt.Errorf("%s: %w", h.cfg.Workload, err)
	}
	h.before = p
	h.holdPath = []byte("/api/holds")
	h.holdBody = fmt.Appendf(nil, `{"product_id":%d,"qty":1}`, h.productID)
	h.start = time.Now()
	return nil
}

// insufficientStock is the contract's error code of a hold refused for want
// of stock.
const insufficientStock = "insufficient_stock"

// op asks for one unit. Each 201 is recorded in the granted phase and each
// 409 insufficient_stock in the sold-out phase (phase.go).
func (h *hotWorkload) op(w *worker) {
	// Only requests sent after the sell-out was seen count as after it: an
	// earlier request may still be answered 201 later.
	soldOut := h.soldOutNanos.Load() != 0
	var opts requestOptions
	if h.cfg.KeyedHolds {
		// A fresh key on every hold, as a shop that may retry sends:
		// the server remembers each answer.
		w.seq++
		w.keyBuf = appendKey(w.keyBuf[:0], h.runID, 'h', int64(w.id), w.seq)
		opts.idempotencyKey = w.keyBuf
	}
	r := w.call(EndpointHoldCreate, methodPost, h.holdPath, h.holdBody, opts)
	sinceStart := max(time.Since(h.start).Nanoseconds(), 1)
	if soldOut && r.status != 0 {
		h.afterAnswers.Add(1)
	}
	switch {
	case r.status == 201:
		h.granted.Add(1)
		storeMax(&h.lastGrantNanos, sinceStart)
		w.shard.recordPhase(phaseGranted, r.latency)
		var token []byte
		if r.json != nil {
			token = r.json.GetStringBytes("hold_token")
		}
		h.keepToken(token)
	case r.status == 409 && r.errorCodeIs(insufficientStock):
		w.shard.recordPhase(phaseSoldOut, r.latency)
		if soldOut {
			h.afterRejects.Add(1)
		} else if storeMin(&h.soldOutNanos, sinceStart) {
			h.grantsAtSellOut.Store(h.granted.Load())
		}
	case r.status == 0 || (r.status >= 500 && r.status != 503):
		// No answer, or a failure that does not promise nothing was done.
		h.unknown.Add(1)
	}
}

// storeMin sets v to x if v is 0 or larger than x, and reports whether it
// did: concurrent workers agree on the earliest time.
func storeMin(v *atomic.Int64, x int64) bool {
	for {
		old := v.Load()
		if old != 0 && old <= x {
			return false
		}
		if v.CompareAndSwap(old, x) {
			return true
		}
	}
}

// storeMax sets v to x if v is smaller than x.
func storeMax(v *atomic.Int64, x int64) {
	for {
		old := v.Load()
		if old >= x || v.CompareAndSwap(old, x) {
			return
		}
	}
}

// keepToken keeps a copy of a granted hold's token for the expiry check.
func (h *hotWorkload) keepToken(token []byte) {
	h.tokensMu.Lock()
	if h.tokens.count < hotTokensKeptMax {
		h.tokens.add(token)
	}
	h.tokensMu.Unlock()
}

// tokenArenaChunkBytes is the size of one chunk of a tokenArena: about
// 15,000 tokens of the contract's length.
const tokenArenaChunkBytes = 1 << 20

// tokenArena keeps tokens back to back, each after its length, in large
// chunks, so that keeping one allocates nothing but a new chunk now and then
// (a string per granted hold would put an allocation on the client's 201
// path, which the grants workload runs at full speed).
type tokenArena struct {
	chunks [][]byte
	count  int
}

// add appends a copy of token.
func (a *tokenArena) add(token []byte) {
	need := binary.MaxVarintLen64 + len(token)
	if n := len(a.chunks); n == 0 || cap(a.chunks[n-1])-len(a.chunks[n-1]) < need {
		a.chunks = append(a.chunks, make([]byte, 0, max(tokenArenaChunkBytes, need)))
	}
	c := &a.chunks[len(a.chunks)-1]
	*c = binary.AppendUvarint(*c, uint64(len(token)))
	*c = append(*c, token...)
	a.count++
}

// strings returns every token kept, in the order they were added.
func (a *tokenArena) strings() []string {
	out := make([]string, 0, a.count)
	for _, c := range a.chunks {
		for len(c) > 0 {
			n, k := binary.Uvarint(c)
			out = append(out, string(c[k:k+int(n)]))
			c = c[k+int(n):]
		}
	}
	return out
}

// progress shows the stock flashbench believes is left.
func (h *hotWorkload) progress() string {
	return fmt.Sprintf("stock left %d", max(h.before.AvailableStock-h.granted.Load(), 0))
}

// finish checks granted units against the stock and fills res.Hot.
func (h *hotWorkload) finish(_ context.Context, env *runEnv, res *Result) error {
	granted, unknown := h.granted.Load(), h.unknown.Load()
	after, expired, err := h.settle(env, granted, unknown)
	if err != nil {
		return fmt.Errorf("hot audit: %w", err)
	}
	checkProductArithmetic(env.violations, "after the load", after)
	checkUnitsAgainstStock(env.violations, h.before, after, unitLedger{liveUnits: granted - expired, unknownUnits: unknown})
	stock := h.before.AvailableStock + (after.TotalStock - h.before.TotalStock)
	soldOutNanos := h.soldOutNanos.Load()
	if soldOutNanos != 0 && granted+unknown < stock {
		env.violations.addf("product %d: sold out after granting only %d of %d units", h.productID, granted, stock)
	}
	hr := &HotResult{
		ProductID:          h.productID,
		StockAtStart:       h.before.AvailableStock,
		HoldsGranted:       granted,
		UnitsGranted:       granted,
		UnitsUnknown:       unknown,
		UnitsExpired:       expired,
		GrantedEqualsStock: granted == stock,
		SoldOut:            soldOutNanos != 0,
		LastGrantMillis:    float64(h.lastGrantNanos.Load()) / 1e6,
		RejectsAfterSold:   h.afterRejects.Load(),
		Phases: phaseResults(env.loadRec.phaseTotals(), res.DurationSec,
			float64(h.lastGrantNanos.Load())/1e9, float64(soldOutNanos)/1e9),
	}
	if soldOutNanos != 0 {
		hr.SellOutMillis = float64(soldOutNanos) / 1e6
		hr.GrantsAtSellOut = h.grantsAtSellOut.Load()
		afterSec := res.DurationSec - float64(soldOutNanos)/1e9
		if afterSec > 0 {
			hr.RejectsPerSecAfter = float64(hr.RejectsAfterSold) / afterSec
		}
		if n := h.afterAnswers.Load(); n > 0 {
			hr.RejectShareAfter = float64(hr.RejectsAfterSold) / float64(n)
		}
	}
	res.Hot = hr
	return nil
}

// hotSettleAttempts bounds the audit's wait for expiring holds to settle.
const (
	hotSettleAttempts = 5
	hotSettlePause    = 200 * time.Millisecond
)

// settle reads the product and, when the server counts fewer units than
// were granted, the number of units whose hold expired. Holds may expire
// while it asks (a short --hold-ttl), so it retries until the product's
// counts did not move while the holds were read and the figures agree.
func (h *hotWorkload) settle(env *runEnv, granted, unknown int64) (Product, int64, error) {
	var after Product
	var expired int64
	for attempt := 0; attempt < hotSettleAttempts; attempt++ {
		if attempt > 0 {
			time.Sleep(hotSettlePause)
		}
		first, err := env.control.getProduct(h.productID)
		if err != nil {
			return first, 0, err
		}
		committed := (first.ReservedStock + first.SoldStock) - (h.before.ReservedStock + h.before.SoldStock)
		if committed >= granted && committed <= granted+unknown {
			return first, 0, nil
		}
		if expired, err = h.countExpired(env); err != nil {
			return first, 0, err
		}
		if after, err = env.control.getProduct(h.productID); err != nil {
			return after, 0, err
		}
		stable := after.ReservedStock+after.SoldStock == first.ReservedStock+first.SoldStock
		if stable && committed >= granted-expired && committed <= granted-expired+unknown {
			return after, expired, nil
		}
	}
	return after, expired, nil
}

// countExpired asks the server about every granted hold and returns the
// units whose hold has expired.
func (h *hotWorkload) countExpired(env *runEnv) (int64, error) {
	h.tokensMu.Lock()
	tokens := h.tokens.strings()
	h.tokensMu.Unlock()
	var expired atomic.Int64
	err := forEachParallel(env.newControlWorkers(verifyParallelism), len(tokens), func(w *worker, i int) error {
		st, err := w.getHold(tokens[i])
		if err != nil {
			return err
		}
		if st.Status == "expired" {
			expired.Add(1)
		}
		return nil
	})
	return expired.Load(), err
}

// begin marks the start of the load: sell-out times count from here.
func (h *hotWorkload) begin(start time.Time) { h.start = start }
