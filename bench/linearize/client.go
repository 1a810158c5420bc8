package linearize

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Client sends the requests of a history over HTTP and reduces the answers
// to Outputs. It is safe for concurrent use.
type Client struct {
	base func() string // the server's base URL now, e.g. http://127.0.0.1:8080
	http *http.Client
}

// NewClient returns a client of the server whose URL base returns; base is
// asked before every request, so a test can point it at a restarted server.
// A request that takes longer than timeout counts as unanswered.
func NewClient(base func() string, timeout time.Duration) *Client {
	tr := &http.Transport{
		MaxIdleConnsPerHost: 64,
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
	}
	return &Client{base: base, http: &http.Client{Transport: tr, Timeout: timeout}}
}

// CloseIdle closes idle keep-alive connections.
func (c *Client) CloseIdle() { c.http.CloseIdleConnections() }

// Meta is what a recorded operation keeps beside its Output: the server
// (base URL) the request went to, and the timestamps Output leaves out, a
// hold's expires_at and an order's created_at (zero when absent).
type Meta struct {
	Server               string
	ExpiresAt, CreatedAt time.Time
}

// Do sends in and returns the answer. sent is false when the request
// certainly never reached the server (the connection was refused), so it
// belongs in no history.
func (c *Client) Do(in Input) (out Output, at Meta, sent bool) {
	var method, path string
	var body []byte
	var key string
	switch in.Kind {
	case KindHold:
		method, path, key = "POST", "/api/holds", in.Key
		body = fmt.Appendf(nil, `{"product_id":%d,"qty":%d}`, in.ProductID, in.Qty)
	case KindGetHold:
		method, path = "GET", "/api/holds/"+url.PathEscape(in.Token)
	case KindOrder:
		method, path = "POST", "/api/orders"
		body, _ = json.Marshal(map[string]string{"hold_token": in.Token})
	case KindGetOrder:
		method, path = "GET", "/api/orders/"+strconv.FormatUint(in.OrderID, 10)
	case KindWebhook:
		method, path, key = "POST", "/api/payments/webhook", in.Key
		status := "failure"
		if in.Success {
			status = "success"
		}
		m := map[string]any{"status": status, "order_id": in.OrderID}
		if in.Reason != "" {
			m["failure_reason"] = in.Reason
		}
		body, _ = json.Marshal(m)
	case KindGetProduct:
		method, path = "GET", "/api/products/"+strconv.FormatUint(in.ProductID, 10)
	default:
		panic(fmt.Sprintf("linearize: %s is not a request", in.Kind))
	}
	at.Server = c.base()
	status, replayed, w, err := c.roundTrip(at.Server, method, path, key, body)
	if err != nil {
		return Unanswered, at, !refused(err)
	}
	at.ExpiresAt, _ = time.Parse(time.RFC3339Nano, w.ExpiresAt)
	at.CreatedAt, _ = time.Parse(time.RFC3339Nano, w.CreatedAt)
	return reduce(in.Kind, status, replayed, w), at, true
}

// Products reads GET /api/products and returns one Output per id in ids, as
// GET /api/products/{id} would have answered (404 for an id not listed).
func (c *Client) Products(ids []uint64) (outs []Output, sent bool) {
	status, replayed, w, err := c.roundTrip(c.base(), "GET", "/api/products", "", nil)
	if err != nil {
		return nil, !refused(err)
	}
	for _, id := range ids {
		out := Output{HTTP: status, Error: w.Error, Replayed: replayed}
		if status == 200 {
			out = errorOut(404, "product_not_found")
			for _, p := range w.Products {
				if p.ID == id {
					out = reduce(KindGetProduct, status, replayed, p)
				}
			}
		}
		outs = append(outs, out)
	}
	return outs, true
}

// wire is every field of every answer body the contract fixes.
type wire struct {
	Error          string `json:"error"`
	ID             uint64 `json:"id"`
	HoldToken      string `json:"hold_token"`
	ProductID      uint64 `json:"product_id"`
	Qty            int64  `json:"qty"`
	Status         string `json:"status"`
	OrderID        uint64 `json:"order_id"`
	AmountCents    int64  `json:"amount_cents"`
	FailureReason  string `json:"failure_reason"`
	Applied        bool   `json:"applied"`
	TotalStock     int64  `json:"total_stock"`
	AvailableStock int64  `json:"available_stock"`
	ReservedStock  int64  `json:"reserved_stock"`
	SoldStock      int64  `json:"sold_stock"`
	Products       []wire `json:"products"`
	ExpiresAt      string `json:"expires_at"`
	CreatedAt      string `json:"created_at"`
}

func (c *Client) roundTrip(base, method, path, key string, body []byte) (status int, replayed bool, w wire, err error) {
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		return 0, false, w, err
	}
	// net/http resends a request that carries an Idempotency-Key on a new
	// connection when a reused one fails; the first attempt may have been
	// served, so a failed resend is not "never sent". Without GetBody it
	// never resends a request with a body.
	req.GetBody = nil
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, false, w, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, false, w, err
	}
	if err := json.Unmarshal(data, &w); err != nil {
		w = wire{Error: "unparseable body: " + string(data)}
	}
	return resp.StatusCode, resp.Header.Get("Idempotent-Replayed") == "true", w, nil
}

// refused reports an error from dialling: the request was never sent (a
// GET may have been sent on a connection that failed before the redial,
// but a read changes nothing, so leaving it out is sound).
func refused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// reduce keeps the fields of an answer that the model predicts for kind.
func reduce(kind Kind, status int, replayed bool, w wire) Output {
	out := Output{HTTP: status, Replayed: replayed}
	if status >= 300 || w.Error != "" {
		out.Error = w.Error
		if w.Error == "insufficient_stock" {
			out.Available = w.AvailableStock
		}
		return out
	}
	switch kind {
	case KindHold:
		out.Token, out.ProductID, out.Qty = w.HoldToken, w.ProductID, w.Qty
	case KindGetHold:
		out.Token, out.ProductID, out.Qty, out.State, out.OrderID = w.HoldToken, w.ProductID, w.Qty, w.Status, w.OrderID
	case KindOrder, KindGetOrder:
		out.OrderID, out.ProductID, out.Qty, out.Amount = w.OrderID, w.ProductID, w.Qty, w.AmountCents
		out.State, out.Token, out.Reason = w.Status, w.HoldToken, w.FailureReason
	case KindWebhook:
		out.OrderID, out.State, out.Applied = w.OrderID, w.Status, w.Applied
	case KindGetProduct:
		out.ProductID, out.Total, out.Available, out.Reserved, out.Sold = w.ID, w.TotalStock, w.AvailableStock, w.ReservedStock, w.SoldStock
	}
	return out
}
