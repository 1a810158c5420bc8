package transport

import (
	"strings"
	"testing"
)

// adminAuth is the Authorization header of the fuzz fixture's admin.
const adminAuth = "Bearer " + fuzzAdminToken

// FuzzAdminProductBody sends arbitrary bodies, under the admin token or an
// arbitrary Authorization header, to POST /api/admin/products. Besides the
// common checks: a 201 adds exactly one product, with the name, price and
// stock asked for and nothing reserved or sold.
func FuzzAdminProductBody(f *testing.F) {
	for _, s := range []struct{ body, auth string }{
		{`{"name":"Gadget","price_cents":1999,"total_stock":50,"max_per_hold":5}`, adminAuth},
		{`{"name":"Gadget","price_cents":0,"total_stock":0}`, adminAuth},
		{`{"name":"\u00e9t\u00e9","price_cents":1000000000000,"total_stock":1000000000000,"max_per_hold":1000000}`, adminAuth},
		{`{"name":"Gadget","price_cents":1000000000001,"total_stock":1}`, adminAuth},
		{`{"name":"Gadget","price_cents":1,"total_stock":-1}`, adminAuth},
		{`{"name":"Gadget","price_cents":1,"total_stock":1,"max_per_hold":0}`, adminAuth},
		{`{"name":"Gadget","price_cents":1,"total_stock":1,"max_per_hold":null}`, adminAuth},
		{`{"name":"Gadget","price_cents":1.5,"total_stock":1}`, adminAuth},
		{`{"name":"","price_cents":1,"total_stock":1}`, adminAuth},
		{`{"name":"` + strings.Repeat("n", 201) + `","price_cents":1,"total_stock":1}`, adminAuth},
		{`{"name":"\ud800","price_cents":1,"total_stock":1}`, adminAuth},
		{`{"name":7,"price_cents":1,"total_stock":1}`, adminAuth},
		{`{"id":1,"name":"Clash","price_cents":1,"total_stock":1}`, adminAuth},
		{`{"price_cents":1,"total_stock":1}`, adminAuth},
		{`{"name":"Gadget","price_cents":1,"total_stock":1}`, ""},
		{`{"name":"Gadget","price_cents":1,"total_stock":1}`, "Bearer wrong"},
		{`{"name":"Gadget","price_cents":1,"total_stock":1}`, "bearer " + fuzzAdminToken},
		{`{"name":"Gadget","price_cents":1,"total_stock":1}`, adminAuth + " "},
		{`{"name":"Gadget"`, adminAuth},
		{``, adminAuth},
	} {
		f.Add([]byte(s.body), s.auth)
	}
	fx := newFuzzFixture(f, nil)
	f.Fuzz(func(t *testing.T, body []byte, auth string) {
		fx.next()
		req := fuzzRequest{path: "/api/admin/products", body: body, headers: [][2]string{{"Authorization", auth}}}
		status, answer, before := fx.check(t, req, adminCreateAnswers, nil)
		if status != 201 {
			return
		}
		after := fx.eng.Products(nil)
		id, _ := answer["id"].(float64)
		if len(after) != len(before.products)+1 || float64(after[len(after)-1].ID) != id {
			t.Fatalf("201 %s: products went from %d to %d", fx.ctx.Response.Body(), len(before.products), len(after))
		}
		p := after[len(after)-1]
		name, _ := answer["name"].(string)
		if p.Name != name || p.Available != p.TotalStock || p.Reserved != 0 || p.Sold != 0 {
			t.Fatalf("201 %s: product is %+v", fx.ctx.Response.Body(), p)
		}
	})
}

// FuzzRestockBody sends arbitrary bodies to POST
// /api/admin/products/{id}/restock with an arbitrary id segment. Besides the
// common checks: a 200 adds exactly qty units to that product's total and
// available stock and touches no other product.
func FuzzRestockBody(f *testing.F) {
	for _, s := range []struct{ id, body string }{
		{"1", `{"qty":5}`},
		{"2", `{"qty":1}`},
		{"3", `{"qty":1000000000000}`},
		{"1", `{"qty":999999999900}`},
		{"1", `{"qty":0}`},
		{"1", `{"qty":-5}`},
		{"1", `{"qty":"5"}`},
		{"1", `{"qty":5.0}`},
		{"1", `{"qty":5e2}`},
		{"1", `{"qty":9223372036854775807}`},
		{"1", `{}`},
		{"1", ``},
		{"1", `{"qty":5}]`},
		{"9", `{"qty":5}`},
		{"0", `{"qty":5}`},
		{"01", `{"qty":5}`},
		{"-1", `{"qty":5}`},
		{"18446744073709551616", `{"qty":5}`},
		{"9223372036854775808", `{"qty":5}`},
		{"1.0", `{"qty":5}`},
		{"..", `{"qty":5}`},
		{"x", `{"qty":5}`},
	} {
		f.Add(s.id, []byte(s.body))
	}
	fx := newFuzzFixture(f, nil)
	f.Fuzz(func(t *testing.T, id string, body []byte) {
		if !pathSegment(id) {
			t.Skip("not a path segment")
		}
		fx.next()
		req := fuzzRequest{path: "/api/admin/products/" + id + "/restock", body: body,
			headers: [][2]string{{"Authorization", adminAuth}}}
		status, answer, before := fx.check(t, req, restockAnswers, nil)
		if status != 200 {
			return
		}
		after := fx.eng.Products(nil)
		pid, _ := answer["id"].(float64)
		changed := 0
		for i, p := range after {
			q := before.products[i]
			if p == q {
				continue
			}
			changed++
			added := p.TotalStock - q.TotalStock
			if float64(p.ID) != pid || added < 1 || p.Available-q.Available != added || p.Reserved != q.Reserved || p.Sold != q.Sold {
				t.Fatalf("restock %s %s: %+v became %+v", id, body, q, p)
			}
		}
		if changed != 1 {
			t.Fatalf("restock %s %s changed %d products", id, body, changed)
		}
	})
}

// pathSegment reports whether s can stand in a URL path as one segment as
// is: visible ASCII without '/', '?', '#' or '%'.
func pathSegment(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= 0x20 || c >= 0x7f || strings.IndexByte("/?#%", c) >= 0 {
			return false
		}
	}
	return true
}
