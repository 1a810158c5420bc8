// Package testkit is what the multi-process test suites (bench/crash and
// bench/cluster) share: their TestMain, the random seed a failing run can be
// repeated with, the --seed catalog entry, the JSON shapes of docs/API.md
// the tests read, and an HTTP client whose every exchange is checked
// against docs/openapi.yaml.
//
// The client never retries on its own: a request that got no answer may or
// may not have taken effect, and the suites' ledgers must know which
// requests those are.
package testkit

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/bench/apicheck"
	"github.com/flashsale/flashsale/bench/serverproc"
)

// Main runs a suite's tests, stops every server they left running, and
// fails the run if any exchange recorded in contract broke
// docs/openapi.yaml (the client has no *testing.T to fail).
func Main(m *testing.M, contract *apicheck.Tally) {
	code := m.Run()
	serverproc.Cleanup()
	if !contract.Report(os.Stderr) && code == 0 {
		code = 1
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "docs/openapi.yaml: %d exchanges checked\n", contract.Checked())
	}
	os.Exit(code)
}

// Seed is a test's random seed: the value of the environment variable env
// if set, else the clock. It is logged with the line that repeats it.
func Seed(t testing.TB, env string) int64 {
	t.Helper()
	seed := time.Now().UnixNano()
	if s := os.Getenv(env); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", env, s, err)
		}
		seed = v
	}
	t.Logf("random seed %d (repeat with %s=%d)", seed, env, seed)
	return seed
}

// SeedProduct is one entry of the server's --seed file.
type SeedProduct struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	TotalStock int64  `json:"total_stock"`
	MaxPerHold int64  `json:"max_per_hold"`
}

// The JSON shapes of docs/API.md that the suites read.
type (
	Product struct {
		ID             int64 `json:"id"`
		TotalStock     int64 `json:"total_stock"`
		AvailableStock int64 `json:"available_stock"`
		ReservedStock  int64 `json:"reserved_stock"`
		SoldStock      int64 `json:"sold_stock"`
	}
	Hold struct {
		HoldToken string `json:"hold_token"`
		ProductID int64  `json:"product_id"`
		Qty       int64  `json:"qty"`
		ExpiresAt string `json:"expires_at"`
		Status    string `json:"status"`
		OrderID   int64  `json:"order_id"`
	}
	Order struct {
		OrderID     int64  `json:"order_id"`
		ProductID   int64  `json:"product_id"`
		Qty         int64  `json:"qty"`
		AmountCents int64  `json:"amount_cents"`
		Status      string `json:"status"`
		HoldToken   string `json:"hold_token"`
	}
	Webhook struct {
		OrderID int64  `json:"order_id"`
		Status  string `json:"status"`
		Applied *bool  `json:"applied"`
	}
)

// Reply is one answer of a server.
type Reply struct {
	Status     int
	Body       []byte
	Replayed   bool   // Idempotent-Replayed: true
	RetryAfter string // Retry-After
	Header     http.Header
	Took       time.Duration
}

func (r Reply) String() string { return fmt.Sprintf("%d %s", r.Status, r.Body) }

// ErrorCode is the "error" field of the body, "" if none.
func (r Reply) ErrorCode() string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error
}

// idleConnsPerHost is how many keep-alive connections the client keeps to
// each server: as many as the suites' concurrent workers, so that a load
// does not open a connection per request.
const idleConnsPerHost = 32

// Client speaks docs/API.md over net/http to any server.
type Client struct {
	hc       *http.Client
	contract *apicheck.Tally
}

// NewClient gives up on an exchange after timeout and records every
// exchange in contract.
func NewClient(timeout time.Duration, contract *apicheck.Tally) *Client {
	tr := &http.Transport{MaxIdleConnsPerHost: idleConnsPerHost, IdleConnTimeout: 30 * time.Second}
	return &Client{hc: &http.Client{Timeout: timeout, Transport: tr}, contract: contract}
}

// Close drops the client's idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Do sends one request to base (a server's URL); key, if not empty, is the
// Idempotency-Key. An error means no answer: the request may or may not
// have taken effect.
func (c *Client) Do(base, method, path, body, key string) (Reply, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return Reply{}, err
	}
	// A request that failed on a reused connection may have been served;
	// never let net/http send it again on its own.
	req.GetBody = nil
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return Reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Reply{}, err
	}
	c.contract.CheckHTTP(req, []byte(body), resp, b)
	return Reply{Status: resp.StatusCode, Body: b, Replayed: resp.Header.Get("Idempotent-Replayed") == "true",
		RetryAfter: resp.Header.Get("Retry-After"), Header: resp.Header, Took: time.Since(start)}, nil
}

// Products reads GET /api/products of base into a map by id.
func (c *Client) Products(base string) (map[int64]Product, error) {
	r, err := c.Do(base, "GET", "/api/products", "", "")
	if err != nil {
		return nil, err
	}
	if r.Status != http.StatusOK {
		return nil, fmt.Errorf("GET /api/products: %v", r)
	}
	var list struct {
		Products []Product `json:"products"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil {
		return nil, fmt.Errorf("GET /api/products: %v: %s", err, r.Body)
	}
	m := make(map[int64]Product, len(list.Products))
	for _, p := range list.Products {
		m[p.ID] = p
	}
	return m, nil
}
