package apicheck

import (
	"net/http"
	"strings"
	"testing"
)

func checker(t *testing.T) *Checker {
	t.Helper()
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func jsonHeader(kv ...string) http.Header {
	h := http.Header{"Content-Type": {"application/json"}}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

const goodHold = `{"hold_token":"1_1_9f86d081884c7d659a2feaa0c55ad015","product_id":1,"qty":2,"expires_at":"2026-11-25T17:04:03.123Z"}`

// TestCheckerAcceptsConformingExchanges: answers the server really gives
// pass, so that a failure elsewhere means a real break.
func TestCheckerAcceptsConformingExchanges(t *testing.T) {
	c := checker(t)
	for _, ex := range []Exchange{
		{Method: "POST", Path: "/api/holds", Header: jsonHeader(), Body: []byte(`{"product_id":1,"qty":2}`),
			Status: 201, RespHeader: jsonHeader(), RespBody: []byte(goodHold)},
		{Method: "POST", Path: "/api/holds", Header: jsonHeader(), Body: []byte(`{"product_id":1,"qty":2}`),
			Status: 409, RespHeader: jsonHeader("Idempotent-Replayed", "true"),
			RespBody: []byte(`{"error":"insufficient_stock","message":"m","available_stock":1}`)},
		{Method: "POST", Path: "/api/holds", Header: jsonHeader(), Body: []byte(`{"product_id":1}`),
			Status: 422, RespHeader: jsonHeader(), RespBody: []byte(`{"error":"validation_failed","message":"m","field":"qty"}`)},
		{Method: "POST", Path: "/api/holds", Header: jsonHeader(), Body: []byte(`{"product_id":1,"qty":1}`),
			Status: 503, RespHeader: jsonHeader("Retry-After", "1"), RespBody: []byte(`{"error":"overloaded","message":"m"}`)},
		{Method: "GET", Path: "/api/products/1", Status: 200, RespHeader: jsonHeader(),
			RespBody: []byte(`{"id":1,"name":"W","price_cents":1,"total_stock":3,"available_stock":1,"reserved_stock":1,"sold_stock":1,"max_per_hold":1}`)},
		{Method: "HEAD", Path: "/api/products/1", Status: 200, RespHeader: jsonHeader()},
		{Method: "GET", Path: "/nope", Status: 404, RespHeader: jsonHeader(), RespBody: []byte(`{"error":"not_found","message":"m"}`)},
		{Method: "DELETE", Path: "/api/holds", Status: 405, RespHeader: jsonHeader("Allow", "POST"),
			RespBody: []byte(`{"error":"method_not_allowed","message":"m"}`)},
		{Method: "GET", Path: "/metrics", Status: 200, RespHeader: http.Header{"Content-Type": {"text/plain; version=0.0.4; charset=utf-8"}},
			RespBody: []byte("x 1\n")},
	} {
		if err := c.Check(&ex); err != nil {
			t.Errorf("%v", err)
		}
	}
}

// TestCheckerCatchesBrokenAnswers: deliberately wrong answers, each of
// which the checker must report.
func TestCheckerCatchesBrokenAnswers(t *testing.T) {
	c := checker(t)
	for name, tc := range map[string]struct {
		ex   Exchange
		want string
	}{
		"201 without a required field": {Exchange{Method: "POST", Path: "/api/holds", Header: jsonHeader(),
			Body: []byte(`{"product_id":1,"qty":2}`), Status: 201, RespHeader: jsonHeader(),
			RespBody: []byte(`{"hold_token":"1_1_9f86d081884c7d659a2feaa0c55ad015","product_id":1,"qty":2}`)}, "expires_at"},
		"a status the operation does not list": {Exchange{Method: "GET", Path: "/api/products/1",
			Status: 418, RespHeader: jsonHeader(), RespBody: []byte(`{"error":"not_found","message":"m"}`)}, "status is not supported"},
		"503 without Retry-After": {Exchange{Method: "POST", Path: "/api/holds", Header: jsonHeader(),
			Body: []byte(`{"product_id":1,"qty":1}`), Status: 503, RespHeader: jsonHeader(),
			RespBody: []byte(`{"error":"overloaded","message":"m"}`)}, "Retry-After"},
		"an error code that does not fit the status": {Exchange{Method: "GET", Path: "/api/products/1",
			Status: 404, RespHeader: jsonHeader(), RespBody: []byte(`{"error":"hold_not_found","message":"m"}`)}, "product_not_found"},
		"a timestamp without milliseconds": {Exchange{Method: "POST", Path: "/api/holds", Header: jsonHeader(),
			Body: []byte(`{"product_id":1,"qty":2}`), Status: 201, RespHeader: jsonHeader(),
			RespBody: []byte(strings.Replace(goodHold, ".123Z", "Z", 1))}, "expires_at"},
		"an invalid request answered 201": {Exchange{Method: "POST", Path: "/api/holds", Header: jsonHeader(),
			Body: []byte(`{"product_id":1,"qty":0}`), Status: 201, RespHeader: jsonHeader(), RespBody: []byte(goodHold)}, "not a 4xx"},
		"a webhook without its key answered 200": {Exchange{Method: "POST", Path: "/api/payments/webhook", Header: jsonHeader(),
			Body: []byte(`{"status":"success","order_id":1}`), Status: 200, RespHeader: jsonHeader(),
			RespBody: []byte(`{"order_id":1,"status":"paid","applied":true}`)}, "not a 4xx"},
		"an undocumented route answered 200": {Exchange{Method: "GET", Path: "/api/nope",
			Status: 200, RespHeader: jsonHeader(), RespBody: []byte(`{}`)}, "undocumented route"},
		"a 405 without Allow": {Exchange{Method: "DELETE", Path: "/api/holds",
			Status: 405, RespHeader: jsonHeader(), RespBody: []byte(`{"error":"method_not_allowed","message":"m"}`)}, "Allow"},
		"a field the schema does not have": {Exchange{Method: "GET", Path: "/api/orders/1", Status: 200, RespHeader: jsonHeader(),
			RespBody: []byte(`{"order_id":1,"product_id":1,"qty":1,"amount_cents":1,"status":"pending","hold_token":"1_1_9f86d081884c7d659a2feaa0c55ad015","created_at":"2026-11-25T17:04:03.123Z","updated_at":"2026-11-25T17:04:03.123Z","extra":1}`)}, "extra"},
	} {
		err := c.Check(&tc.ex)
		if err == nil {
			t.Errorf("%s: the checker passed %v", name, &tc.ex)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not mention %q", name, err, tc.want)
		}
	}
}
