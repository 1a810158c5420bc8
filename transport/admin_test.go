package transport

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestAdmin: bearer auth, product creation with an assigned id, restock,
// and every validation error, each changing nothing.
func TestAdmin(t *testing.T) {
	ts := startServer(t, func(s *serverSetup) { s.opts.AdminToken = "s3cret" })
	auth := []string{"Authorization", "Bearer s3cret"}
	create := `{"name":"Gadget","price_cents":1500,"total_stock":20,"max_per_hold":3}`

	before := ts.snapshot()
	for _, h := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", "s3cret"},
		{"Authorization", "Basic s3cret"}, {"Authorization", "Bearer s3cretX"}, {"Authorization", "Bearer "}} {
		expectError(t, ts.do("POST", "/api/admin/products", create, h...), 401, "unauthorized", "")
		expectError(t, ts.do("POST", "/api/admin/products/1/restock", `{"qty":1}`, h...), 401, "unauthorized", "")
	}
	bad := []struct{ body, field string }{
		{`{"price_cents":1,"total_stock":1}`, "name"},
		{`{"name":"","price_cents":1,"total_stock":1}`, "name"},
		{`{"name":5,"price_cents":1,"total_stock":1}`, "name"},
		{`{"name":"` + strings.Repeat("n", 201) + `","price_cents":1,"total_stock":1}`, "name"},
		{`{"name":"x","total_stock":1}`, "price_cents"},
		{`{"name":"x","price_cents":-1,"total_stock":1}`, "price_cents"},
		{`{"name":"x","price_cents":1.5,"total_stock":1}`, "price_cents"},
		{`{"name":"x","price_cents":1000000000001,"total_stock":1}`, "price_cents"},
		{`{"name":"x","price_cents":1}`, "total_stock"},
		{`{"name":"x","price_cents":1,"total_stock":-1}`, "total_stock"},
		{`{"name":"x","price_cents":1,"total_stock":"5"}`, "total_stock"},
		{`{"name":"x","price_cents":1,"total_stock":1000000000001}`, "total_stock"},
		{`{"name":"x","price_cents":1,"total_stock":1,"max_per_hold":0}`, "max_per_hold"},
		{`{"name":"x","price_cents":1,"total_stock":1,"max_per_hold":1000001}`, "max_per_hold"},
		{`{"name":"x","price_cents":1,"total_stock":1,"max_per_hold":"2"}`, "max_per_hold"},
	}
	for _, c := range bad {
		expectError(t, ts.do("POST", "/api/admin/products", c.body, auth...), 422, "validation_failed", c.field)
	}
	expectError(t, ts.do("POST", "/api/admin/products", `{"name":`, auth...), 400, "invalid_json", "")
	expectError(t, ts.do("POST", "/api/admin/products/1/restock", `{"qty":0}`, auth...), 422, "validation_failed", "qty")
	expectError(t, ts.do("POST", "/api/admin/products/1/restock", `{"qty":"3"}`, auth...), 422, "validation_failed", "qty")
	expectError(t, ts.do("POST", "/api/admin/products/1/restock", `{"qty":1000000000000}`, auth...), 422, "validation_failed", "qty")
	expectError(t, ts.do("POST", "/api/admin/products/1/restock", `[]`, auth...), 400, "invalid_json", "")
	expectError(t, ts.do("POST", "/api/admin/products/999/restock", `{"qty":1}`, auth...), 404, "product_not_found", "")
	expectError(t, ts.do("POST", "/api/admin/products/abc/restock", `{"qty":1}`, auth...), 404, "product_not_found", "")
	expectError(t, ts.do("GET", "/api/admin/products", "", auth...), 405, "method_not_allowed", "")
	if after := ts.snapshot(); after != before {
		t.Fatalf("refused admin requests changed state:\n%s\n%s", before, after)
	}

	p := expectStatus(t, ts.do("POST", "/api/admin/products", create, auth...), 201)
	if num(t, p, "id") != 3 || p["name"] != "Gadget" || num(t, p, "price_cents") != 1500 || num(t, p, "total_stock") != 20 ||
		num(t, p, "available_stock") != 20 || num(t, p, "max_per_hold") != 3 {
		t.Fatalf("created %v", p)
	}
	d := expectStatus(t, ts.do("POST", "/api/admin/products", `{"name":"Default","price_cents":0,"total_stock":0}`, auth...), 201)
	if num(t, d, "id") != 4 || num(t, d, "max_per_hold") != 10 {
		t.Fatalf("created with defaults %v", d)
	}
	ts.hold(3, 3)
	r := expectStatus(t, ts.do("POST", "/api/admin/products/3/restock", `{"qty":5}`, auth...), 200)
	if num(t, r, "total_stock") != 25 || num(t, r, "available_stock") != 22 || num(t, r, "reserved_stock") != 3 {
		t.Fatalf("restocked %v", r)
	}
	ts.expectStock("3", 22, 3, 0)
}

// TestConcurrentRestocksCannotPassTheStockLimitTogether: restocks that each
// fit under the limit but not together, sent at once over real
// connections, are granted only as far as the limit allows; the rest get the
// qty validation error and change nothing.
func TestConcurrentRestocksCannotPassTheStockLimitTogether(t *testing.T) {
	ts := startServer(t, func(s *serverSetup) { s.opts.AdminToken = "s3cret" })
	auth := []string{"Authorization", "Bearer s3cret"}
	created := expectStatus(t, ts.do("POST", "/api/admin/products",
		`{"name":"Deep","price_cents":100,"total_stock":0}`, auth...), 201)
	id := num(t, created, "id")
	const restocks = 8
	qty := int64(stockMax/restocks + stockMax/(4*restocks)) // any 7 fit, all 8 do not
	answers := make(chan response, restocks)
	var wg sync.WaitGroup
	for i := 0; i < restocks; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := ts.tryDo("POST", fmt.Sprintf("/api/admin/products/%d/restock", id), fmt.Sprintf(`{"qty":%d}`, qty), auth...)
			if err != nil {
				t.Errorf("restock: %v", err)
				return
			}
			answers <- r
		}()
	}
	wg.Wait()
	close(answers)
	granted := 0
	for r := range answers {
		if r.status == 200 {
			granted++
			continue
		}
		expectError(t, r, 422, "validation_failed", "qty")
	}
	if want := int(stockMax / qty); granted != want {
		t.Fatalf("%d restocks of %d granted, want %d (the limit is %d)", granted, qty, want, int64(stockMax))
	}
	ts.expectStock(strconv.FormatInt(id, 10), int64(granted)*qty, 0, 0)
}
