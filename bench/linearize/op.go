package linearize

import (
	"strconv"
	"strings"
)

// Kind names one request of the API.
type Kind uint8

// The requests a history holds. A GET /api/products list is recorded as one
// KindGetProduct per product, all with the list's call and return time.
const (
	KindHold       Kind = iota + 1 // POST /api/holds
	KindGetHold                    // GET /api/holds/{token}
	KindOrder                      // POST /api/orders
	KindGetOrder                   // GET /api/orders/{id}
	KindWebhook                    // POST /api/payments/webhook
	KindGetProduct                 // GET /api/products/{id} (or one entry of the list)

	// Expiries are not requests: the checker adds one per hold and per
	// order (with --order-ttl), whose interval is the window in which the
	// server must expire it (see AddExpiries). Output is the zero value.
	KindExpireHold  // the hold's expires_at has come
	KindExpireOrder // the order's payment window has closed
)

func (k Kind) String() string {
	switch k {
	case KindHold:
		return "POST /holds"
	case KindGetHold:
		return "GET /holds"
	case KindOrder:
		return "POST /orders"
	case KindGetOrder:
		return "GET /orders"
	case KindWebhook:
		return "POST /webhook"
	case KindGetProduct:
		return "GET /products"
	case KindExpireHold:
		return "(expire hold)"
	case KindExpireOrder:
		return "(expire order)"
	}
	return "?"
}

// Input is what a client sent. Only the fields of its Kind are set.
type Input struct {
	Kind Kind
	// Seq is unique within a history; it names the hold an unanswered
	// POST /api/holds may have created.
	Seq int

	ProductID uint64 // hold, get product
	Qty       int64  // hold
	Key       string // Idempotency-Key of a hold (optional) or webhook
	// KeyOnce: no other request of the history carries Key (see
	// MarkSingleUseKeys), so the model need not remember it. Keys no one
	// asks about again only multiply the states the checker must tell
	// apart.
	KeyOnce bool
	Token   string // get hold, order, expire hold
	OrderID uint64 // get order, webhook, expire order
	Success bool   // webhook: "success" or "failure"
	Reason  string // webhook failure_reason

	// HintOrderID is set on an unanswered POST /api/orders: the order id
	// the hold has in a read after the run (0: the hold was never ordered).
	// A hold makes at most one order, so if this request created it, that
	// is the id it got.
	HintOrderID uint64
}

// Output is what the server answered, reduced to the fields the contract
// fixes (timestamps are left out). Outputs are comparable with ==.
type Output struct {
	// Unknown: no answer (connection error, timeout, crash). The request
	// may or may not have taken effect.
	Unknown bool

	HTTP     int    // status code
	Error    string // the error code of a 4xx/5xx body
	Replayed bool   // header Idempotent-Replayed: true

	Token     string // hold_token (hold, order)
	ProductID uint64 // product_id (hold, order), id (product)
	Qty       int64
	OrderID   uint64 // order_id (order, webhook, ordered hold)
	State     string // status: hold active/ordered, order pending/paid/cancelled, webhook queued/pending/paid/cancelled
	Amount    int64  // amount_cents
	Reason    string // failure_reason
	Applied   bool   // webhook applied

	// Product counts; Available is also a 409's available_stock.
	Total, Available, Reserved, Sold int64
}

// Unanswered is the Output of a request that got no answer.
var Unanswered = Output{Unknown: true}

// placeholderPrefix starts the model's name for the hold an unanswered
// POST /api/holds may have created; real tokens never start with it.
const placeholderPrefix = "?"

func isPlaceholder(token string) bool { return strings.HasPrefix(token, placeholderPrefix) }

// placeholderName names the hold that the unanswered request seq may have
// created.
func placeholderName(seq int) string { return placeholderPrefix + strconv.Itoa(seq) }
