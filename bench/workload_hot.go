package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// hotTokensKeptMax bounds the hold tokens kept for the expiry check; a server
// that grants far beyond its stock is caught long before this.
const hotTokensKeptMax = 1_000_000

// hotWorkload is the flash sale spike: every worker races to hold one unit
// of one product until it sells out, then keeps hammering.
type hotWorkload struct {
	cfg       Config
	productID int64
	before    Product
	start     time.Time
	holdPath  []byte
	holdBody  []byte

	granted        atomic.Int64
	unknown        atomic.Int64
	soldOutNanos   atomic.Int64 // since start; 0 = not yet
	lastGrantNanos atomic.Int64
	afterAnswers   atomic.Int64 // answers received after sell-out
	afterRejects   atomic.Int64 // of which 409

	tokensMu sync.Mutex
	tokens   []string
}

func newHotWorkload(cfg Config) *hotWorkload { return &hotWorkload{cfg: cfg} }

// setup picks or creates the product and reads its stock.
func (h *hotWorkload) setup(_ context.Context, env *runEnv) error {
	h.productID = h.cfg.ProductID
	if h.productID <= 0 {
		name := fmt.Sprintf("flashbench hot %s", env.runID)
		p, err := env.control.createProduct(name, 4999, h.cfg.HotStock, 1)
		if err != nil {
			return fmt.Errorf("hot: %w", err)
		}
		h.productID = p.ID
	}
	p, err := env.control.getProduct(h.productID)
	if err != nil {
		return fmt.Errorf("hot: %w", err)
	}
	h.before = p
	h.holdPath = []byte("/api/holds")
	h.holdBody = fmt.Appendf(nil, `{"product_id":%d,"qty":1}`, h.productID)
	h.start = time.Now()
	return nil
}

// op asks for one unit.
func (h *hotWorkload) op(w *worker) {
	r := w.call(EndpointHoldCreate, methodPost, h.holdPath, h.holdBody, requestOptions{})
	sinceStart := time.Since(h.start).Nanoseconds()
	soldOut := h.soldOutNanos.Load() != 0
	if soldOut && r.status != 0 {
		h.afterAnswers.Add(1)
	}
	switch {
	case r.status == 201:
		h.granted.Add(1)
		h.lastGrantNanos.Store(sinceStart)
		if r.json != nil {
			h.keepToken(string(r.json.GetStringBytes("hold_token")))
		}
	case r.status == 409:
		if soldOut {
			h.afterRejects.Add(1)
		} else if r.json != nil && r.json.GetInt64("available_stock") == 0 {
			h.soldOutNanos.CompareAndSwap(0, max(sinceStart, 1))
		}
	case r.status == 0 || (r.status >= 500 && r.status != 503):
		// No answer, or a failure that does not promise nothing was done.
		h.unknown.Add(1)
	}
}

func (h *hotWorkload) keepToken(token string) {
	h.tokensMu.Lock()
	if len(h.tokens) < hotTokensKeptMax {
		h.tokens = append(h.tokens, token)
	}
	h.tokensMu.Unlock()
}

// progress shows the stock flashbench believes is left.
func (h *hotWorkload) progress() string {
	return fmt.Sprintf("stock left %d", max(h.before.AvailableStock-h.granted.Load(), 0))
}

// finish checks granted units against the stock and fills res.Hot.
func (h *hotWorkload) finish(_ context.Context, env *runEnv, res *Result) error {
	after, err := env.control.getProduct(h.productID)
	if err != nil {
		return fmt.Errorf("hot audit: %w", err)
	}
	checkProductArithmetic(env.violations, "after the load", after)
	granted, unknown := h.granted.Load(), h.unknown.Load()
	committedDelta := (after.ReservedStock + after.SoldStock) - (h.before.ReservedStock + h.before.SoldStock)
	expired := int64(0)
	if committedDelta < granted {
		// Holds may have expired during the run (a short --hold-ttl): ask.
		expired, err = h.countExpired(env)
		if err != nil {
			return fmt.Errorf("hot audit: %w", err)
		}
	}
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
	}
	if soldOutNanos != 0 {
		hr.SellOutMillis = float64(soldOutNanos) / 1e6
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

// countExpired asks the server about every granted hold and returns the
// units whose hold has expired.
func (h *hotWorkload) countExpired(env *runEnv) (int64, error) {
	h.tokensMu.Lock()
	tokens := append([]string(nil), h.tokens...)
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
