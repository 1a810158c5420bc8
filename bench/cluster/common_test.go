package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// seedEnv names the environment variable that fixes the tests' random seed.
const seedEnv = "FLASHSALE_CLUSTER_SEED"

// cyclesEnv names the environment variable that sets how many kill -9
// cycles the failover tests run (make verify runs more).
const cyclesEnv = "FLASHSALE_CLUSTER_CYCLES"

// rngFor is a test's random source: $FLASHSALE_CLUSTER_SEED if set, else
// the clock; the seed is logged so a failure can be repeated (the timing of
// real processes still varies).
func rngFor(t *testing.T) *rand.Rand {
	seed := time.Now().UnixNano()
	if s := os.Getenv(seedEnv); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", seedEnv, s, err)
		}
		seed = v
	}
	t.Logf("random seed %d (repeat with %s=%d)", seed, seedEnv, seed)
	return rand.New(rand.NewSource(seed))
}

// cycles is $FLASHSALE_CLUSTER_CYCLES, or def.
func cycles(t *testing.T, def int) int {
	s := os.Getenv(cyclesEnv)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", cyclesEnv, s)
	}
	return n
}

// seedProduct is one entry of the --seed file.
type seedProduct struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	TotalStock int64  `json:"total_stock"`
	MaxPerHold int64  `json:"max_per_hold"`
}

// catalog has two products per partition of a 3-partition cluster (product
// p lives in partition p mod 3): a large one that keeps holds and orders
// flowing, and a small one that the load sells out.
var catalog = []seedProduct{
	{ID: 1, Name: "Phone", PriceCents: 49900, TotalStock: 1_000_000, MaxPerHold: 5},
	{ID: 2, Name: "Sneaker", PriceCents: 19999, TotalStock: 1_000_000, MaxPerHold: 5},
	{ID: 3, Name: "Widget", PriceCents: 4999, TotalStock: 1_000_000, MaxPerHold: 5},
	{ID: 4, Name: "Last Unit", PriceCents: 9900, TotalStock: 5, MaxPerHold: 1},
	{ID: 5, Name: "Lamp", PriceCents: 2500, TotalStock: 20, MaxPerHold: 2},
	{ID: 6, Name: "Gift Card", PriceCents: 1000, TotalStock: 30, MaxPerHold: 3},
}

func seedJSON(products []seedProduct) []byte {
	b, err := json.Marshal(products)
	if err != nil {
		panic(err)
	}
	return b
}

// serverFlags are given to every node of these tests: holds that outlive a
// test and no payment timeout, so nothing changes but through a request.
var serverFlags = []string{"--hold-ttl", "10m", "--order-ttl", "0"}

// startCluster starts 3 nodes, 3 partitions, seeded with catalog.
func startCluster(t *testing.T, proxies bool, extraFlags ...string) *Cluster {
	t.Helper()
	return Start(t, Options{Seed: seedJSON(catalog), Proxies: proxies,
		ExtraFlags: append(append([]string(nil), serverFlags...), extraFlags...)})
}

// productIn is a large product of the catalog that lives in partition p.
func productIn(c *Cluster, p int) seedProduct {
	for _, s := range catalog {
		if c.PartitionOfProduct(s.ID) == p && s.TotalStock >= 1000 {
			return s
		}
	}
	panic(fmt.Sprintf("no large product in partition %d", p))
}

// requestTimeout bounds one HTTP exchange of the tests' clients.
const requestTimeout = 5 * time.Second

// reply is one answer of a node.
type reply struct {
	status     int
	body       []byte
	replayed   bool   // Idempotent-Replayed: true
	retryAfter string // Retry-After
	header     http.Header
	took       time.Duration
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// errorCode is the "error" field of the body, "" if none.
func (r reply) errorCode() string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Error
}

// client speaks docs/API.md to any node.
type client struct{ hc *http.Client }

func newClient(t testing.TB, timeout time.Duration) *client {
	c := &client{hc: &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}}
	t.Cleanup(c.hc.CloseIdleConnections)
	return c
}

// do sends one request to base (a node's URL); key, if not empty, is the
// Idempotency-Key. An error means no answer: the request may or may not
// have taken effect.
func (c *client) do(base, method, path, body, key string) (reply, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return reply{}, err
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
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	contract.CheckHTTP(req, []byte(body), resp, b)
	return reply{status: resp.StatusCode, body: b, replayed: resp.Header.Get("Idempotent-Replayed") == "true",
		retryAfter: resp.Header.Get("Retry-After"), header: resp.Header, took: time.Since(start)}, nil
}

// The JSON shapes of docs/API.md the tests read.
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

// products reads GET /api/products of one node into a map by id.
func (c *client) products(base string) (map[int64]productJSON, error) {
	r, err := c.do(base, "GET", "/api/products", "", "")
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

// product reads GET /api/products/{id} of one node.
func (c *client) product(base string, id int64) (productJSON, error) {
	r, err := c.do(base, "GET", fmt.Sprintf("/api/products/%d", id), "", "")
	if err != nil {
		return productJSON{}, err
	}
	var p productJSON
	if r.status != http.StatusOK {
		return p, fmt.Errorf("GET /api/products/%d: %v", id, r)
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		return p, fmt.Errorf("GET /api/products/%d: %v: %s", id, err, r.body)
	}
	return p, nil
}

// hold posts a hold and decodes a 201.
func (c *client) hold(base string, product, qty int64, key string) (holdJSON, reply, error) {
	r, err := c.do(base, "POST", "/api/holds", fmt.Sprintf(`{"product_id":%d,"qty":%d}`, product, qty), key)
	var h holdJSON
	if err == nil && r.status == http.StatusCreated {
		err = json.Unmarshal(r.body, &h)
	}
	return h, r, err
}

// order posts an order for a hold token and decodes a 200 or 201.
func (c *client) order(base, token string) (orderJSON, reply, error) {
	r, err := c.do(base, "POST", "/api/orders", fmt.Sprintf(`{"hold_token":%q}`, token), "")
	var o orderJSON
	if err == nil && (r.status == http.StatusCreated || r.status == http.StatusOK) {
		err = json.Unmarshal(r.body, &o)
	}
	return o, r, err
}

// webhookBody is the body of a payment webhook.
func webhookBody(orderID int64, success bool) string {
	if success {
		return fmt.Sprintf(`{"status":"success","order_id":%d}`, orderID)
	}
	return fmt.Sprintf(`{"status":"failure","order_id":%d,"failure_reason":"insufficient_funds"}`, orderID)
}

// retryUnavailable sends a request until it gets an answer other than 503
// (or no answer), for up to patience, and returns the last outcome.
func retryUnavailable(patience time.Duration, send func() (reply, error)) (reply, error) {
	deadline := time.Now().Add(patience)
	for {
		r, err := send()
		if (err == nil && r.status != http.StatusServiceUnavailable) || time.Now().After(deadline) {
			return r, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkStock checks the stock arithmetic of every seeded product as one
// node reports it.
func checkStock(t reporter, where string, seed []seedProduct, products map[int64]productJSON) {
	t.Helper()
	for _, s := range seed {
		p, ok := products[s.ID]
		switch {
		case !ok:
			t.Errorf("%s: seeded product %d is missing", where, s.ID)
		case p.TotalStock != s.TotalStock:
			t.Errorf("%s: product %d: total_stock %d, seeded %d", where, s.ID, p.TotalStock, s.TotalStock)
		case p.AvailableStock+p.ReservedStock+p.SoldStock != p.TotalStock:
			t.Errorf("%s: product %d: available %d + reserved %d + sold %d != total %d",
				where, s.ID, p.AvailableStock, p.ReservedStock, p.SoldStock, p.TotalStock)
		case p.AvailableStock < 0 || p.ReservedStock < 0 || p.SoldStock < 0:
			t.Errorf("%s: product %d: negative stock: %+v", where, s.ID, p)
		}
	}
}

// replaceFlag returns flags with the value after name replaced (appended
// if name is absent).
func replaceFlag(flags []string, name, value string) []string {
	out := append([]string(nil), flags...)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == name {
			out[i+1] = value
			return out
		}
	}
	return append(out, name, value)
}

// mustHold posts a hold through base, retrying 503s for a few seconds
// (a leader may be changing), and fails the test unless it gets a 201.
func mustHold(t *testing.T, cl *client, base string, product, qty int64, key string) (holdJSON, reply) {
	t.Helper()
	var h holdJSON
	r, err := retryUnavailable(5*time.Second, func() (reply, error) {
		var r reply
		var err error
		h, r, err = cl.hold(base, product, qty, key)
		return r, err
	})
	if err != nil || r.status != http.StatusCreated {
		t.Fatalf("POST /api/holds {product_id:%d, qty:%d} (key %q) through %s: %v %v; want 201", product, qty, key, base, r, err)
	}
	return h, r
}

// mustOrder orders a hold through base like mustHold; a retry of an order
// is safe (a hold makes one order), and 200 or 201 are accepted.
func mustOrder(t *testing.T, cl *client, base, token string) (orderJSON, reply) {
	t.Helper()
	var o orderJSON
	r, err := retryUnavailable(5*time.Second, func() (reply, error) {
		var r reply
		var err error
		o, r, err = cl.order(base, token)
		return r, err
	})
	if err != nil || (r.status != http.StatusCreated && r.status != http.StatusOK) {
		t.Fatalf("POST /api/orders {hold_token:%s} through %s: %v %v; want 201", token, base, r, err)
	}
	return o, r
}

// mustProduct reads a product through base, retrying 503s like mustHold.
func mustProduct(t *testing.T, cl *client, base string, id int64) productJSON {
	t.Helper()
	var p productJSON
	r, err := retryUnavailable(5*time.Second, func() (reply, error) {
		r, err := cl.do(base, "GET", fmt.Sprintf("/api/products/%d", id), "", "")
		if err == nil && r.status == http.StatusOK {
			err = json.Unmarshal(r.body, &p)
		}
		return r, err
	})
	if err != nil || r.status != http.StatusOK {
		t.Fatalf("GET /api/products/%d through %s: %v %v", id, base, r, err)
	}
	return p
}

// mustProducts reads GET /api/products through base like
// productsPatiently, and fails the test if no read succeeds.
func mustProducts(t *testing.T, cl *client, base string) map[int64]productJSON {
	t.Helper()
	ps, err := productsPatiently(cl, base)
	if err != nil {
		t.Fatalf("%s: %v", base, err)
	}
	return ps
}

// productsPatiently reads GET /api/products through base, retrying
// refusals and lost answers for up to 5 s.
func productsPatiently(cl *client, base string) (map[int64]productJSON, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		ps, err := cl.products(base)
		if err == nil || time.Now().After(deadline) {
			return ps, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
