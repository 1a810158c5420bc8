package cluster

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/flashsale/flashsale/bench/testkit"
)

// seedEnv names the environment variable that fixes the tests' random seed.
const seedEnv = "FLASHSALE_CLUSTER_SEED"

// cyclesEnv names the environment variable that sets how many kill -9
// cycles the failover tests run (make verify runs more).
const cyclesEnv = "FLASHSALE_CLUSTER_CYCLES"

// rngFor is a test's random source: $FLASHSALE_CLUSTER_SEED if set, else
// the clock; the seed is logged so a failure can be repeated (the timing of
// real processes still varies).
func rngFor(t *testing.T) *rand.Rand { return rand.New(rand.NewSource(testkit.Seed(t, seedEnv))) }

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

type seedProduct = testkit.SeedProduct

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

type reply = testkit.Reply

// client speaks docs/API.md to any node.
type client struct{ *testkit.Client }

func newClient(t testing.TB, timeout time.Duration) *client {
	c := &client{testkit.NewClient(timeout, &contract)}
	t.Cleanup(c.Close)
	return c
}

// The JSON shapes of docs/API.md the tests read.
type (
	productJSON = testkit.Product
	holdJSON    = testkit.Hold
	orderJSON   = testkit.Order
	webhookJSON = testkit.Webhook
)

// product reads GET /api/products/{id} of one node.
func (c *client) product(base string, id int64) (productJSON, error) {
	r, err := c.Do(base, "GET", fmt.Sprintf("/api/products/%d", id), "", "")
	if err != nil {
		return productJSON{}, err
	}
	var p productJSON
	if r.Status != http.StatusOK {
		return p, fmt.Errorf("GET /api/products/%d: %v", id, r)
	}
	if err := json.Unmarshal(r.Body, &p); err != nil {
		return p, fmt.Errorf("GET /api/products/%d: %v: %s", id, err, r.Body)
	}
	return p, nil
}

// hold posts a hold and decodes a 201.
func (c *client) hold(base string, product, qty int64, key string) (holdJSON, reply, error) {
	r, err := c.Do(base, "POST", "/api/holds", fmt.Sprintf(`{"product_id":%d,"qty":%d}`, product, qty), key)
	var h holdJSON
	if err == nil && r.Status == http.StatusCreated {
		err = json.Unmarshal(r.Body, &h)
	}
	return h, r, err
}

// order posts an order for a hold token and decodes a 200 or 201.
func (c *client) order(base, token string) (orderJSON, reply, error) {
	r, err := c.Do(base, "POST", "/api/orders", fmt.Sprintf(`{"hold_token":%q}`, token), "")
	var o orderJSON
	if err == nil && (r.Status == http.StatusCreated || r.Status == http.StatusOK) {
		err = json.Unmarshal(r.Body, &o)
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
		if (err == nil && r.Status != http.StatusServiceUnavailable) || time.Now().After(deadline) {
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
	if err != nil || r.Status != http.StatusCreated {
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
	if err != nil || (r.Status != http.StatusCreated && r.Status != http.StatusOK) {
		t.Fatalf("POST /api/orders {hold_token:%s} through %s: %v %v; want 201", token, base, r, err)
	}
	return o, r
}

// mustProduct reads a product through base, retrying 503s like mustHold.
func mustProduct(t *testing.T, cl *client, base string, id int64) productJSON {
	t.Helper()
	var p productJSON
	r, err := retryUnavailable(5*time.Second, func() (reply, error) {
		r, err := cl.Do(base, "GET", fmt.Sprintf("/api/products/%d", id), "", "")
		if err == nil && r.Status == http.StatusOK {
			err = json.Unmarshal(r.Body, &p)
		}
		return r, err
	})
	if err != nil || r.Status != http.StatusOK {
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
		ps, err := cl.Products(base)
		if err == nil || time.Now().After(deadline) {
			return ps, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
