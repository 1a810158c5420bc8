package crash

import (
	"time"

	"github.com/flashsale/flashsale/bench/testkit"
)

// requestTimeout bounds one HTTP exchange with the server.
const requestTimeout = 10 * time.Second

// client speaks the API of docs/API.md to one server.
type client struct {
	*testkit.Client
	base string
}

func newClient(base string) *client {
	return &client{Client: testkit.NewClient(requestTimeout, &contract), base: base}
}

// do sends one request to the client's server (see testkit.Client.Do).
func (c *client) do(method, path, body, key string) (reply, error) {
	return c.Do(c.base, method, path, body, key)
}

type reply = testkit.Reply

// The JSON shapes of docs/API.md that the tests read, and the --seed entry.
type (
	productJSON = testkit.Product
	holdJSON    = testkit.Hold
	orderJSON   = testkit.Order
	webhookJSON = testkit.Webhook
	seedProduct = testkit.SeedProduct
)

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
func (c *client) getProducts() (map[int64]productJSON, error) { return c.Products(c.base) }
