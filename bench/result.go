package bench

// Result is every figure of one run; --json writes it as is.
type Result struct {
	Workload       string  `json:"workload"`
	Target         string  `json:"target"` // host:port that was loaded
	Mode           string  `json:"mode"`   // "closed" or "open"
	Conns          int     `json:"conns"`
	RatePerSec     float64 `json:"rate_per_sec,omitempty"`
	Seed           int64   `json:"seed"`
	DurationSec    float64 `json:"duration_sec"` // measured wall time of the load
	Ops            int64   `json:"ops"`          // workload operations completed
	OpsPerSec      float64 `json:"ops_per_sec"`
	Requests       int64   `json:"requests"`
	RequestsPerSec float64 `json:"requests_per_sec"`
	MissedArrivals int64   `json:"missed_arrivals"` // open loop: ops due but never started

	Latency LatencySummary `json:"latency"` // all load requests together
	// Timeline is the load second by second (by completion time), so that a
	// stall shows when it happened.
	Timeline  []IntervalResult `json:"timeline"`
	Endpoints []EndpointResult `json:"endpoints"`
	Errors    []ErrorCount     `json:"errors"`

	Hot      *HotResult      `json:"hot,omitempty"`
	Checkout *CheckoutResult `json:"checkout,omitempty"`
	Ceiling  *CeilingResult  `json:"ceiling,omitempty"`
	Audit    AuditResult     `json:"audit"`
}

// EndpointResult is one endpoint's throughput, latency and answers.
type EndpointResult struct {
	Endpoint       string           `json:"endpoint"`
	Requests       int64            `json:"requests"`
	RequestsPerSec float64          `json:"requests_per_sec"`
	Latency        LatencySummary   `json:"latency"`
	ByStatus       map[string]int64 `json:"by_status"` // "0" = no answer
}

// ErrorCount counts unsuccessful answers of one kind.
type ErrorCount struct {
	Endpoint string `json:"endpoint"`
	Status   int    `json:"status"` // 0: transport error or timeout
	Code     string `json:"code"`   // the contract's "error" field
	Count    int64  `json:"count"`
}

// HotResult is the hot workload's flash sale figures.
type HotResult struct {
	ProductID          int64   `json:"product_id"`
	StockAtStart       int64   `json:"stock_at_start"` // available units when the load began
	HoldsGranted       int64   `json:"holds_granted"`  // each hold is for one unit
	UnitsGranted       int64   `json:"units_granted"`
	UnitsUnknown       int64   `json:"units_unknown"` // requests with no answer: granted or not
	UnitsExpired       int64   `json:"units_expired"` // granted units whose hold expired during the run
	GrantedEqualsStock bool    `json:"granted_equals_stock"`
	SoldOut            bool    `json:"sold_out"`
	SellOutMillis      float64 `json:"sell_out_millis,omitempty"` // from start to the first 409 showing 0 available
	LastGrantMillis    float64 `json:"last_grant_millis,omitempty"`
	RejectsAfterSold   int64   `json:"rejects_after_sell_out"`
	RejectsPerSecAfter float64 `json:"rejects_per_sec_after_sell_out"`
	RejectShareAfter   float64 `json:"reject_share_after_sell_out"` // 409s / answers after sell-out
	// GrantsAtSellOut is the units granted before the sell-out was seen;
	// the rest of HoldsGranted were in flight at the time.
	GrantsAtSellOut int64 `json:"grants_at_sell_out,omitempty"`
	// Phases are the granted phase (201s) and the sold-out phase (409
	// insufficient_stock), in that order; see phase.go for the bounds.
	Phases []PhaseResult `json:"phases"`
}

// Phase returns the phase named name ("granted" or "sold_out").
func (h *HotResult) Phase(name string) PhaseResult {
	for _, p := range h.Phases {
		if p.Phase == name {
			return p
		}
	}
	return PhaseResult{Phase: name}
}

// CheckoutResult is the checkout workload's flow figures.
type CheckoutResult struct {
	Flows                 int64 `json:"flows"`
	HoldsGranted          int64 `json:"holds_granted"`
	HoldsRejected         int64 `json:"holds_rejected"` // 409 insufficient_stock
	OrdersCreated         int64 `json:"orders_created"`
	OrderRetries          int64 `json:"order_retries"` // deliberate second POST of a hold token
	PaymentsSuccess       int64 `json:"payments_success"`
	PaymentsFailure       int64 `json:"payments_failure"`
	DuplicatesSequential  int64 `json:"duplicates_sequential"`
	DuplicatesConcurrent  int64 `json:"duplicates_concurrent"`
	ContraryEvents        int64 `json:"contrary_events"` // a second, opposite event for a final order
	EarlyWebhooks         int64 `json:"early_webhooks"`  // webhooks sent before their order existed (202)
	EarlyWebhooksResolved int64 `json:"early_webhooks_resolved"`
	// EarlyWebhooksLeftQueued were still waiting for their order after the
	// drain (stock ran out): they will apply to orders made later.
	EarlyWebhooksLeftQueued int64 `json:"early_webhooks_left_queued"`
	// DrainFlows are purchases made after the load, so that every order id
	// with a queued early webhook gets created and checked.
	DrainFlows int64 `json:"drain_flows"`
	// OrdersFinalAtCreation were created already paid or cancelled by a
	// webhook that this run did not send (queued before the run).
	OrdersFinalAtCreation int64 `json:"orders_final_at_creation"`
	OrdersVerified        int64 `json:"orders_verified"`
	OrdersPaid            int64 `json:"orders_paid"`
	OrdersCancelled       int64 `json:"orders_cancelled"`
	OrdersPending         int64 `json:"orders_pending"`
	LostPayments          int64 `json:"lost_payments"`    // applied success, order not paid
	DoubledPayments       int64 `json:"doubled_payments"` // more than one event applied
}

// CeilingResult compares the run with the constant-response server.
type CeilingResult struct {
	RequestsPerSec float64        `json:"requests_per_sec"`
	Latency        LatencySummary `json:"latency"`
	// Ratio is the run's requests per second over the ceiling's (0 when
	// the run itself was the ceiling).
	Ratio float64 `json:"ratio,omitempty"`
}

// AuditResult is the end-of-run check of the server's arithmetic and of the
// workload's expectations.
type AuditResult struct {
	OK             bool           `json:"ok"`
	ViolationCount int64          `json:"violation_count"`
	Violations     []string       `json:"violations"`
	Products       []ProductAudit `json:"products"`
}

// ProductAudit is one product before and after the load.
type ProductAudit struct {
	Before Product `json:"before"`
	After  Product `json:"after"`
}
