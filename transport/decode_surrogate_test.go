package transport

import "testing"

// TestSurrogateEscapes: a body whose strings escape a lone UTF-16 surrogate
// is 400 invalid_json on every endpoint (fastjson would store something
// other than what was sent); pairs, other escapes and the text "\ud800"
// written with an escaped backslash are fine.
func TestSurrogateEscapes(t *testing.T) {
	for _, c := range []struct {
		body string
		ok   bool
	}{
		{`{"name":"\ud83d\ude00"}`, true},
		{`{"name":"\uD83D\uDE00 and \u00e9"}`, true},
		{`{"name":"\\ud800"}`, true},
		{`{"name":"\\\ud83d\ude00\\"}`, true},
		{`{"name":"\"\n\u0000"}`, true},
		{`{"name":"\ud800"}`, false},
		{`{"name":"\udc00"}`, false},
		{`{"name":"\ud800\u0041"}`, false},
		{`{"name":"\ud800\ud800"}`, false},
		{`{"name":"\ude00\ud83d"}`, false},
		{`{"name":"x","\udbff":1}`, false},
		{`{"name":"\\\ud800"}`, false},
	} {
		sc := &scratch{}
		if _, ok := sc.parseObject([]byte(c.body)); ok != c.ok {
			t.Errorf("parseObject(%s) = %v, want %v", c.body, ok, c.ok)
		}
	}
	ts := startServer(t, func(s *serverSetup) { s.opts.AdminToken = "admin" })
	before := ts.snapshot()
	expectError(t, ts.do("POST", "/api/admin/products", `{"name":"\ud800\u0041","price_cents":1,"total_stock":1}`,
		"Authorization", "Bearer admin"), 400, "invalid_json", "")
	expectError(t, ts.do("POST", "/api/holds", `{"product_id":1,"qty":1,"note":"\udc00"}`), 400, "invalid_json", "")
	if after := ts.snapshot(); after != before {
		t.Fatalf("refused requests changed the state: %s -> %s", before, after)
	}
}
