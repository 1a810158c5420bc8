package bench

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/valyala/fastjson"
)

// Product is a product as GET /api/products/{id} reports it.
type Product struct {
	ID             int64  `json:"id"`
	Name           string `json:"name"`
	PriceCents     int64  `json:"price_cents"`
	TotalStock     int64  `json:"total_stock"`
	AvailableStock int64  `json:"available_stock"`
	ReservedStock  int64  `json:"reserved_stock"`
	SoldStock      int64  `json:"sold_stock"`
	MaxPerHold     int64  `json:"max_per_hold"`
}

// productFromJSON reads a Product object; it fails when a count is missing
// or not an integer, since the audit must not mistake absence for zero.
func productFromJSON(v *fastjson.Value) (Product, error) {
	var p Product
	fields := []struct {
		name string
		dst  *int64
	}{
		{"id", &p.ID}, {"price_cents", &p.PriceCents}, {"total_stock", &p.TotalStock},
		{"available_stock", &p.AvailableStock}, {"reserved_stock", &p.ReservedStock},
		{"sold_stock", &p.SoldStock}, {"max_per_hold", &p.MaxPerHold},
	}
	for _, f := range fields {
		fv := v.Get(f.name)
		if fv == nil {
			return p, fmt.Errorf("product without %q", f.name)
		}
		n, err := fv.Int64()
		if err != nil {
			return p, fmt.Errorf("product field %q: %w", f.name, err)
		}
		*f.dst = n
	}
	p.Name = string(v.GetStringBytes("name"))
	return p, nil
}

// Order is the part of an order flashbench checks.
type Order struct {
	ID            int64
	ProductID     int64
	Qty           int64
	Status        string
	FailureReason string
}

// orderFromJSON reads an Order object.
func orderFromJSON(v *fastjson.Value) (Order, error) {
	o := Order{
		ID:            v.GetInt64("order_id"),
		ProductID:     v.GetInt64("product_id"),
		Qty:           v.GetInt64("qty"),
		Status:        string(v.GetStringBytes("status")),
		FailureReason: string(v.GetStringBytes("failure_reason")),
	}
	if o.ID <= 0 || o.Status == "" {
		return o, fmt.Errorf("order without order_id or status")
	}
	return o, nil
}

// describe summarises an unexpected reply for an error message.
func (r *reply) describe() string {
	if r.err != nil {
		return "transport error: " + r.err.Error()
	}
	body := r.body
	if len(body) > 200 {
		body = body[:200]
	}
	return strconv.Itoa(r.status) + " " + string(body)
}

// listProducts fetches GET /api/products.
func (w *worker) listProducts() ([]Product, error) {
	r := w.call(EndpointProductList, methodGet, []byte("/api/products"), nil, requestOptions{})
	if r.status != 200 || r.json == nil {
		return nil, fmt.Errorf("GET /api/products: %s", r.describe())
	}
	items := r.json.GetArray("products")
	if items == nil {
		return nil, fmt.Errorf("GET /api/products: no \"products\" array")
	}
	out := make([]Product, 0, len(items))
	for _, it := range items {
		p, err := productFromJSON(it)
		if err != nil {
			return nil, fmt.Errorf("GET /api/products: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// appendPath appends prefix and the decimal id to w.pathBuf and returns it.
func (w *worker) idPath(prefix string, id int64) []byte {
	w.pathBuf = append(w.pathBuf[:0], prefix...)
	w.pathBuf = strconv.AppendInt(w.pathBuf, id, 10)
	return w.pathBuf
}

// getProduct fetches GET /api/products/{id}.
func (w *worker) getProduct(id int64) (Product, error) {
	r := w.call(EndpointProductGet, methodGet, w.idPath("/api/products/", id), nil, requestOptions{})
	if r.status != 200 || r.json == nil {
		return Product{}, fmt.Errorf("GET /api/products/%d: %s", id, r.describe())
	}
	p, err := productFromJSON(r.json)
	if err != nil {
		return p, fmt.Errorf("GET /api/products/%d: %w", id, err)
	}
	return p, nil
}

// getOrder fetches GET /api/orders/{id}; found is false on 404.
func (w *worker) getOrder(id int64) (o Order, found bool, err error) {
	r := w.call(EndpointOrderGet, methodGet, w.idPath("/api/orders/", id), nil, requestOptions{})
	if r.status == 404 {
		return Order{}, false, nil
	}
	if r.status != 200 || r.json == nil {
		return Order{}, false, fmt.Errorf("GET /api/orders/%d: %s", id, r.describe())
	}
	o, err = orderFromJSON(r.json)
	if err != nil {
		return o, false, fmt.Errorf("GET /api/orders/%d: %w", id, err)
	}
	return o, true, nil
}

// HoldState is what GET /api/holds/{token} reports.
type HoldState struct {
	Status  string // active, ordered or expired
	OrderID int64
	Qty     int64
}

// getHold fetches GET /api/holds/{token}.
func (w *worker) getHold(token string) (HoldState, error) {
	w.pathBuf = append(append(w.pathBuf[:0], "/api/holds/"...), url.PathEscape(token)...)
	r := w.call(EndpointHoldGet, methodGet, w.pathBuf, nil, requestOptions{})
	if r.status != 200 || r.json == nil {
		return HoldState{}, fmt.Errorf("GET /api/holds/…: %s", r.describe())
	}
	return HoldState{
		Status:  string(r.json.GetStringBytes("status")),
		OrderID: r.json.GetInt64("order_id"),
		Qty:     r.json.GetInt64("qty"),
	}, nil
}

// createProduct creates a product through the admin API.
func (w *worker) createProduct(name string, priceCents, totalStock, maxPerHold int64) (Product, error) {
	w.bodyBuf = append(w.bodyBuf[:0], `{"name":`...)
	w.bodyBuf = strconv.AppendQuote(w.bodyBuf, name)
	w.bodyBuf = append(w.bodyBuf, `,"price_cents":`...)
	w.bodyBuf = strconv.AppendInt(w.bodyBuf, priceCents, 10)
	w.bodyBuf = append(w.bodyBuf, `,"total_stock":`...)
	w.bodyBuf = strconv.AppendInt(w.bodyBuf, totalStock, 10)
	w.bodyBuf = append(w.bodyBuf, `,"max_per_hold":`...)
	w.bodyBuf = strconv.AppendInt(w.bodyBuf, maxPerHold, 10)
	w.bodyBuf = append(w.bodyBuf, '}')
	r := w.call(EndpointAdmin, methodPost, []byte("/api/admin/products"), w.bodyBuf, requestOptions{admin: true})
	if r.status != 201 || r.json == nil {
		return Product{}, fmt.Errorf("POST /api/admin/products: %s", r.describe())
	}
	return productFromJSON(r.json)
}

// holdBody sets w.bodyBuf to a POST /api/holds body and returns it.
func (w *worker) holdBody(productID, qty int64) []byte {
	w.bodyBuf = append(w.bodyBuf[:0], `{"product_id":`...)
	w.bodyBuf = strconv.AppendInt(w.bodyBuf, productID, 10)
	w.bodyBuf = append(w.bodyBuf, `,"qty":`...)
	w.bodyBuf = strconv.AppendInt(w.bodyBuf, qty, 10)
	w.bodyBuf = append(w.bodyBuf, '}')
	return w.bodyBuf
}

// orderBody sets w.bodyBuf to a POST /api/orders body and returns it.
func (w *worker) orderBody(holdToken string) []byte {
	w.bodyBuf = append(w.bodyBuf[:0], `{"hold_token":`...)
	w.bodyBuf = strconv.AppendQuote(w.bodyBuf, holdToken)
	w.bodyBuf = append(w.bodyBuf, '}')
	return w.bodyBuf
}

// webhookBody appends a POST /api/payments/webhook body to dst. eventID
// (the delivery's Idempotency-Key) makes the bodies of two events distinct,
// as a real provider's event id does: the server ignores the field, but a
// signature is good for one delivery, and two events with the same body
// signed in the same second would otherwise carry the same signature.
func webhookBody(dst []byte, orderID int64, success bool, eventID []byte) []byte {
	if success {
		dst = append(dst, `{"status":"success","order_id":`...)
		dst = strconv.AppendInt(dst, orderID, 10)
	} else {
		dst = append(dst, `{"status":"failure","order_id":`...)
		dst = strconv.AppendInt(dst, orderID, 10)
		dst = append(dst, `,"failure_reason":"insufficient_funds"`...)
	}
	dst = append(dst, `,"event_id":`...)
	dst = strconv.AppendQuote(dst, string(eventID))
	return append(dst, '}')
}
