package crash

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// requestTimeout bounds one HTTP exchange with the server.
const requestTimeout = 10 * time.Second

// client speaks the API of docs/API.md over net/http.
type client struct {
	base string
	hc   *http.Client
}

func newClient(base string) *client {
	tr := &http.Transport{MaxIdleConnsPerHost: 32, IdleConnTimeout: 30 * time.Second}
	return &client{base: base, hc: &http.Client{Timeout: requestTimeout, Transport: tr}}
}

// close drops the client's idle connections.
func (c *client) close() { c.hc.CloseIdleConnections() }

// reply is one answer of the server.
type reply struct {
	status   int
	body     []byte
	replayed bool // header Idempotent-Replayed: true
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// do sends one request; key, if not empty, is sent as Idempotency-Key. An
// error means no answer arrived: the request may or may not have taken
// effect.
func (c *client) do(method, path, body, key string) (reply, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return reply{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	contract.CheckHTTP(req, []byte(body), resp, b)
	return reply{status: resp.StatusCode, body: b, replayed: resp.Header.Get("Idempotent-Replayed") == "true"}, nil
}

// The JSON shapes of docs/API.md that the tests read.
type (
	productJSON struct {
		ID             int64 `json:"id"`
		TotalStock     int64 `json:"total_stock"`
		AvailableStock int64 `json:"available_stock"`
		ReservedStock  int64 `json:"reserved_stock"`
		SoldStock      int64 `json:"sold_stock"`
	}
	holdJSON struct {
		HoldToken string `json:"hold_token"`
		ProductID int64  `json:"product_id"`
		Qty       int64  `json:"qty"`
		ExpiresAt string `json:"expires_at"`
		Status    string `json:"status"`
		OrderID   int64  `json:"order_id"`
	}
	orderJSON struct {
		OrderID     int64  `json:"order_id"`
		ProductID   int64  `json:"product_id"`
		Qty         int64  `json:"qty"`
		AmountCents int64  `json:"amount_cents"`
		Status      string `json:"status"`
		HoldToken   string `json:"hold_token"`
	}
	webhookJSON struct {
		OrderID int64  `json:"order_id"`
		Status  string `json:"status"`
		Applied *bool  `json:"applied"`
	}
)

// seedProduct is one entry of the server's --seed file.
type seedProduct struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	TotalStock int64  `json:"total_stock"`
	MaxPerHold int64  `json:"max_per_hold"`
}

// Order statuses of docs/API.md.
const (
	statusPending   = "pending"
	statusPaid      = "paid"
	statusCancelled = "cancelled"
)

// Webhook statuses of docs/API.md and the order status each leads to.
const (
	webhookSuccess = "success"
	webhookFailure = "failure"
)

// statusWebhook is the webhook status that leads to a final order status.
func statusWebhook(orderStatus string) string {
	if orderStatus == statusPaid {
		return webhookSuccess
	}
	return webhookFailure
}

func webhookOutcome(webhookStatus string) string {
	if webhookStatus == webhookSuccess {
		return statusPaid
	}
	return statusCancelled
}

// getProducts reads GET /api/products into a map by id.
func (c *client) getProducts() (map[int64]productJSON, error) {
	r, err := c.do("GET", "/api/products", "", "")
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, fmt.Errorf("GET /api/products: %v", r)
	}
	var list struct {
		Products []productJSON `json:"products"`
	}
	if err := json.Unmarshal(r.body, &list); err != nil {
		return nil, fmt.Errorf("GET /api/products: %v: %s", err, r.body)
	}
	m := make(map[int64]productJSON, len(list.Products))
	for _, p := range list.Products {
		m[p.ID] = p
	}
	return m, nil
}
