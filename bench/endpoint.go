package bench

// Endpoint names one route of the contract; statistics are kept per endpoint.
type Endpoint int

// The endpoints flashbench calls.
const (
	EndpointProductGet Endpoint = iota
	EndpointProductList
	EndpointHoldCreate
	EndpointHoldGet
	EndpointOrderCreate
	EndpointOrderGet
	EndpointWebhook
	EndpointAdmin
	endpointCount
)

var endpointNames = [endpointCount]string{
	EndpointProductGet:  "GET /api/products/{id}",
	EndpointProductList: "GET /api/products",
	EndpointHoldCreate:  "POST /api/holds",
	EndpointHoldGet:     "GET /api/holds/{token}",
	EndpointOrderCreate: "POST /api/orders",
	EndpointOrderGet:    "GET /api/orders/{id}",
	EndpointWebhook:     "POST /api/payments/webhook",
	EndpointAdmin:       "POST /api/admin/*",
}

// String returns the route pattern, e.g. "POST /api/holds".
func (e Endpoint) String() string {
	if e < 0 || e >= endpointCount {
		return "unknown"
	}
	return endpointNames[e]
}
