package transport

import (
	"strings"
	"testing"
)

// validationCase is one bad request of docs/API.md and its defined answer.
type validationCase struct {
	name    string
	method  string
	path    string
	body    string
	headers []string
	status  int
	code    string
	field   string
}

func hold(body string) validationCase {
	return validationCase{method: "POST", path: "/api/holds", body: body}
}

func (c validationCase) want(status int, code, field string) validationCase {
	c.status, c.code, c.field = status, code, field
	return c
}

func (c validationCase) with(headers ...string) validationCase {
	c.headers = headers
	return c
}

// TestValidationErrors sends every malformed request of docs/API.md's table and
// fine print, and checks the status, the error code, the field, and that
// nothing changed: the products and the number of logged records are the
// same before and after.
func TestValidationErrors(t *testing.T) {
	ts := startServer(t, nil)
	ts.hold(1, 1) // a hold to make the catalog non-trivial
	order := ts.order(ts.hold(1, 1))
	overLimit := `{"product_id":1,"qty":1,"pad":"` + strings.Repeat("x", 65536) + `"}`
	webhook := func(body string) validationCase {
		return validationCase{method: "POST", path: "/api/payments/webhook", body: body, headers: []string{"Idempotency-Key", "v-key"}}
	}
	orderReq := func(body string) validationCase {
		return validationCase{method: "POST", path: "/api/orders", body: body}
	}
	get := func(path string) validationCase { return validationCase{method: "GET", path: path} }
	cases := []validationCase{
		// Malformed JSON and bodies that are not one object.
		hold("").want(400, "invalid_json", ""),
		hold("   ").want(400, "invalid_json", ""),
		hold("{").want(400, "invalid_json", ""),
		hold(`{"product_id":1,"qty":1} x`).want(400, "invalid_json", ""),
		hold(`{"product_id":1,"qty":1}{}`).want(400, "invalid_json", ""),
		hold(`[{"product_id":1,"qty":1}]`).want(400, "invalid_json", ""),
		hold(`"hold"`).want(400, "invalid_json", ""),
		hold(`42`).want(400, "invalid_json", ""),
		hold(`null`).want(400, "invalid_json", ""),
		hold(`{"product_id":01,"qty":1}`).want(400, "invalid_json", ""),
		hold(`{"product_id":1,"qty":NaN}`).want(400, "invalid_json", ""),
		hold(`{"product_id":1,"qty":1,}`).want(400, "invalid_json", ""),
		hold(`{'product_id':1}`).want(400, "invalid_json", ""),
		hold("{\"product_id\":1,\"qty\":1,\"x\":\"\xff\"}").want(400, "invalid_json", ""),
		hold(overLimit).want(413, "body_too_large", ""),
		// Fields of the wrong type, missing, or out of range.
		hold(`{"product_id":1}`).want(422, "validation_failed", "qty"),
		hold(`{"product_id":1,"qty":null}`).want(422, "validation_failed", "qty"),
		hold(`{"product_id":1,"qty":"2"}`).want(422, "validation_failed", "qty"),
		hold(`{"product_id":1,"qty":2.5}`).want(422, "validation_failed", "qty"),
		hold(`{"product_id":1,"qty":2.0}`).want(422, "validation_failed", "qty"),
		hold(`{"product_id":1,"qty":1e1}`).want(422, "validation_failed", "qty"),
		hold(`{"product_id":1,"qty":0}`).want(422, "validation_failed", "qty"),
		hold(`{"product_id":1,"qty":-1}`).want(422, "validation_failed", "qty"),
		hold(`{"product_id":1,"qty":true}`).want(422, "validation_failed", "qty"),
		hold(`{"product_id":1,"qty":[1]}`).want(422, "validation_failed", "qty"),
		hold(`{"product_id":1,"qty":11}`).want(422, "validation_failed", "qty"),
		hold(`{"product_id":1,"qty":9223372036854775807}`).want(422, "validation_failed", "qty"),
		hold(`{"product_id":1,"qty":9223372036854775808}`).want(422, "validation_failed", "qty"),
		hold(`{"qty":1}`).want(422, "validation_failed", "product_id"),
		hold(`{"product_id":"1","qty":1}`).want(422, "validation_failed", "product_id"),
		hold(`{"product_id":0,"qty":1}`).want(422, "validation_failed", "product_id"),
		hold(`{"product_id":-1,"qty":1}`).want(422, "validation_failed", "product_id"),
		hold(`{"product_id":1.5,"qty":1}`).want(422, "validation_failed", "product_id"),
		hold(`{"product_id":99999999999999999999,"qty":1}`).want(422, "validation_failed", "product_id"),
		hold(`{"product_id":{},"qty":1}`).want(422, "validation_failed", "product_id"),
		hold(`{"product_id":999,"qty":1}`).want(404, "product_not_found", ""),
		// Idempotency keys that are not 1 to 255 visible ASCII characters.
		hold(`{"product_id":1,"qty":1}`).with("Idempotency-Key", "").want(400, "idempotency_key_required", ""),
		hold(`{"product_id":1,"qty":1}`).with("Idempotency-Key", strings.Repeat("k", 256)).want(400, "idempotency_key_required", ""),
		hold(`{"product_id":1,"qty":1}`).with("Idempotency-Key", "has space").want(400, "idempotency_key_required", ""),
		hold(`{"product_id":1,"qty":1}`).with("Idempotency-Key", "caf\xc3\xa9").want(400, "idempotency_key_required", ""),
		hold(`{"product_id":1,"qty":1}`).with("Idempotency-Key", "tab\there").want(400, "idempotency_key_required", ""),
		// Orders.
		orderReq(``).want(400, "invalid_json", ""),
		orderReq(`{}`).want(422, "validation_failed", "hold_token"),
		orderReq(`{"hold_token":5}`).want(422, "validation_failed", "hold_token"),
		orderReq(`{"hold_token":""}`).want(422, "validation_failed", "hold_token"),
		orderReq(`{"hold_token":"nope"}`).want(404, "hold_not_found", ""),
		orderReq(`{"hold_token":"1_00000000000000000000000000000000"}`).want(404, "hold_not_found", ""),
		orderReq(`{"hold_token":"999_00000000000000000000000000000000"}`).want(404, "hold_not_found", ""),
		// Reads of things that do not exist.
		get("/api/products/999").want(404, "product_not_found", ""),
		get("/api/products/0").want(404, "product_not_found", ""),
		get("/api/products/abc").want(404, "product_not_found", ""),
		get("/api/products/-1").want(404, "product_not_found", ""),
		get("/api/holds/garbage").want(404, "hold_not_found", ""),
		get("/api/holds/1_FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF").want(404, "hold_not_found", ""),
		get("/api/orders/999").want(404, "order_not_found", ""),
		get("/api/orders/0").want(404, "order_not_found", ""),
		get("/api/orders/x1").want(404, "order_not_found", ""),
		get("/api/orders/99999999999999999999999").want(404, "order_not_found", ""),
		// Webhooks.
		webhook(`{"status":"success","order_id":1}`).with().want(400, "idempotency_key_required", ""),
		webhook(`{"status":"success","order_id":1}`).with("Idempotency-Key", "").want(400, "idempotency_key_required", ""),
		webhook(`{"status":"success","order_id":1}`).with("Idempotency-Key", strings.Repeat("w", 256)).want(400, "idempotency_key_required", ""),
		webhook(`{"status":"success","order_id":1} x`).want(400, "invalid_json", ""),
		webhook(`[]`).want(400, "invalid_json", ""),
		webhook(`{"order_id":`+order+`}`).want(422, "validation_failed", "status"),
		webhook(`{"status":"paid","order_id":`+order+`}`).want(422, "validation_failed", "status"),
		webhook(`{"status":1,"order_id":`+order+`}`).want(422, "validation_failed", "status"),
		webhook(`{"status":"success"}`).want(422, "validation_failed", "order_id"),
		webhook(`{"status":"success","order_id":"`+order+`"}`).want(422, "validation_failed", "order_id"),
		webhook(`{"status":"success","order_id":0}`).want(422, "validation_failed", "order_id"),
		webhook(`{"status":"success","order_id":-3}`).want(422, "validation_failed", "order_id"),
		webhook(`{"status":"success","order_id":1.5}`).want(422, "validation_failed", "order_id"),
		webhook(`{"status":"success","order_id":18446744073709551616}`).want(422, "validation_failed", "order_id"),
		webhook(`{"status":"failure","order_id":`+order+`,"failure_reason":5}`).want(422, "validation_failed", "failure_reason"),
		webhook(`{"status":"failure","order_id":`+order+`,"failure_reason":"`+strings.Repeat("r", 256)+`"}`).want(422, "validation_failed", "failure_reason"),
		// Routing: strict paths, JSON 404 and 405 on /api/*, admin disabled.
		get("/api/nope").want(404, "not_found", ""),
		get("/api/products/").want(404, "not_found", ""),
		get("/api/products/1/").want(404, "not_found", ""),
		get("/API/products").want(404, "not_found", ""),
		get("/api//products").want(404, "not_found", ""),
		get("/api/holds/").want(404, "not_found", ""),
		{method: "POST", path: "/api/holds/", body: `{"product_id":1,"qty":1}`, status: 404, code: "not_found"},
		{method: "POST", path: "/api/admin/products", body: `{"name":"x","price_cents":1,"total_stock":1}`, status: 404, code: "not_found"},
		{method: "DELETE", path: "/api/products", status: 405, code: "method_not_allowed"},
		{method: "POST", path: "/api/products/1", body: `{}`, status: 405, code: "method_not_allowed"},
		{method: "GET", path: "/api/holds", status: 405, code: "method_not_allowed"},
		{method: "PUT", path: "/api/orders/1", body: `{}`, status: 405, code: "method_not_allowed"},
		{method: "GET", path: "/api/payments/webhook", status: 405, code: "method_not_allowed"},
		{method: "OPTIONS", path: "/api/holds", status: 405, code: "method_not_allowed"},
	}
	for _, c := range cases {
		name := c.method + " " + c.path + " " + c.body
		if len(name) > 100 {
			name = name[:100]
		}
		t.Run(name, func(t *testing.T) {
			before := ts.snapshot()
			r := ts.do(c.method, c.path, c.body, c.headers...)
			expectError(t, r, c.status, c.code, c.field)
			if c.status != 422 && c.field == "" {
				if _, ok := r.json(t)["field"]; ok {
					t.Errorf("unexpected field in %s", r.body)
				}
			}
			if after := ts.snapshot(); after != before {
				t.Errorf("state changed:\n%s\n%s", before, after)
			}
		})
	}
}

// TestMethodNotAllowedAllow: a 405 names the allowed methods, without the
// OPTIONS the router lists by default (OPTIONS is a 405 too).
func TestMethodNotAllowedAllow(t *testing.T) {
	ts := startServer(t, nil)
	r := ts.do("DELETE", "/api/holds", "")
	if got := r.header.Get("Allow"); got != "POST" {
		t.Errorf("Allow = %q, want POST", got)
	}
	if got := ts.do("POST", "/api/products/1", "{}").header.Get("Allow"); got != "GET, HEAD" {
		t.Errorf("Allow = %q, want GET, HEAD", got)
	}
	if r := ts.do("HEAD", "/api/products/1", ""); r.status != 200 || len(r.body) != 0 {
		t.Errorf("HEAD: %d %q", r.status, r.body)
	}
}

// TestBodySizeLimit: 65,536 bytes are accepted, one more is 413, and a body
// far beyond what fasthttp reads is still a JSON 413.
func TestBodySizeLimit(t *testing.T) {
	ts := startServer(t, nil)
	body := func(size int) string {
		b := `{"product_id":1,"qty":1}`
		return b + strings.Repeat(" ", size-len(b))
	}
	if r := ts.do("POST", "/api/holds", body(65536)); r.status != 201 {
		t.Fatalf("65536 bytes: %d %s", r.status, r.body)
	}
	before := ts.snapshot()
	expectError(t, ts.do("POST", "/api/holds", body(65537)), 413, "body_too_large", "")
	expectError(t, ts.do("POST", "/api/payments/webhook", body(65537), "Idempotency-Key", "big"), 413, "body_too_large", "")
	expectError(t, ts.do("POST", "/api/orders", body(65537)), 413, "body_too_large", "")
	r, err := ts.tryDo("POST", "/api/holds", body(2<<20))
	if err == nil { // the server may close before the client has sent it all
		expectError(t, r, 413, "body_too_large", "")
	}
	if after := ts.snapshot(); after != before {
		t.Errorf("state changed:\n%s\n%s", before, after)
	}
}
