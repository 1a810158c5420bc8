package transport

import (
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/valyala/fastjson"
)

// The request fuzz targets of POST /api/holds and POST /api/orders. `go test`
// runs their seeds (below and in testdata/fuzz); `make fuzz` explores. Each
// input goes through Server.Handler, and fuzzFixture.check holds the answer
// to docs/API.md: an allowed status and error code, one JSON object, and nothing
// changed by a refusal.

// FuzzHoldBody sends arbitrary bodies, with or without an arbitrary
// Idempotency-Key, to POST /api/holds. Besides the common checks: a 201
// reserves exactly the units it reports; a remembered 409 is the only
// refusal that writes (its record keeps the answer for replays).
func FuzzHoldBody(f *testing.F) {
	for _, s := range []struct {
		body   string
		key    string
		hasKey bool
	}{
		{`{"product_id":1,"qty":1}`, "", false},
		{`{"product_id":1,"qty":10}`, "k1", true},
		{`{"product_id":1,"qty":11}`, "", false},
		{`{"product_id":2,"qty":1}`, "sold-out", true},
		{`{"product_id":3,"qty":1000000}`, "", false},
		{`{"product_id":9,"qty":1}`, "", false},
		{`{"product_id":1,"qty":1.5}`, "", false},
		{`{"product_id":1,"qty":1e0}`, "", false},
		{`{"product_id":"1","qty":1}`, "", false},
		{`{"product_id":1,"qty":null}`, "", false},
		{`{"product_id":0,"qty":1}`, "", false},
		{`{"product_id":-1,"qty":99999999999999999999}`, "", false},
		{`{"product_id":9223372036854775807,"qty":9223372036854775807}`, "", false},
		{`{"product_id":1,"qty":1,"product_id":2}`, "", false},
		{`{"product_id":1,"qty":1,"extra":[1,{"a":"b"}]}`, "", false},
		{`{}`, "", false},
		{``, "", false},
		{`[`, "", false},
		{`[{"product_id":1,"qty":1}]`, "", false},
		{`"text"`, "", false},
		{`{"product_id":1,"qty":1} x`, "", false},
		{`{"product_id":1,"qty":1}{}`, "", false},
		{` {"product_id":1,"qty":1} `, "", false},
		{`{"product_id":01,"qty":1}`, "", false},
		{"{\"a\":\"\\ud800\"}", "", false},
		{"{\"product_id\":1,\"qty\":1,\"n\":\"\xff\"}", "", false},
		{`{"product_id":1,"qty":1}`, "", true},
		{`{"product_id":1,"qty":1}`, strings.Repeat("k", 256), true},
		{`{"product_id":1,"qty":1}`, "key with space", true},
		{`{"product_id":1,"qty":1}`, "caf\u00e9", true},
		{`{"product_id":1,"qty":1}`, strings.Repeat("k", 255), true},
		{`{"product_id":1,"qty":1}`, "\x7f", true},
		{`{"product_id":1,"qty":` + strings.Repeat(" ", 65536) + `1}`, "", false},
	} {
		f.Add([]byte(s.body), s.key, s.hasKey)
	}
	fx := newFuzzFixture(f, nil)
	f.Fuzz(func(t *testing.T, body []byte, key string, hasKey bool) {
		req := fuzzRequest{path: "/api/holds", body: body}
		if hasKey {
			req.headers = [][2]string{{"Idempotency-Key", key}}
		}
		fx.next()
		status, answer, before := fx.check(t, req, holdAnswers, func(status int, _ map[string]any) bool {
			return status == 409 && hasKey
		})
		if status != 201 || fx.ctx.Response.Header.Peek("Idempotent-Replayed") != nil {
			return
		}
		token, _ := answer["hold_token"].(string)
		ht, ok := engine.ParseHoldToken([]byte(token))
		pid, _ := answer["product_id"].(float64)
		qty, _ := answer["qty"].(float64)
		if !ok || float64(ht.ProductID) != pid || qty < 1 {
			t.Fatalf("201 with a bad hold: %s", fx.ctx.Response.Body())
		}
		after, _ := fx.eng.Product(ht.ProductID)
		for _, p := range before.products {
			if p.ID == ht.ProductID && (p.Available-after.Available != int64(qty) || after.Reserved-p.Reserved != int64(qty)) {
				t.Fatalf("201 for %v units moved %+v to %+v", qty, p, after)
			}
		}
	})
}

// FuzzOrderBody sends arbitrary bodies to POST /api/orders. "@active",
// "@expired" and "@ordered" in an input stand for the tokens of a live
// hold, an expired one and one already ordered, and "@forged" for the live
// hold's token with one bit of its secret flipped, so that the fuzzer
// reaches every answer. A refused order changes nothing; an accepted one
// keeps the hold's units reserved (the invariant check) and names exactly
// the token that was sent, so a forged secret never buys an order.
func FuzzOrderBody(f *testing.F) {
	for _, s := range []string{
		`{"hold_token":"@active"}`,
		`{"hold_token":"@ordered"}`,
		`{"hold_token":"@expired"}`,
		`{"hold_token":"@forged"}`,
		`{"hold_token":"@active","hold_token":"@expired"}`,
		`{"hold_token":"@active","extra":1}`,
		`{"hold_token":"1_00000000000000000000000000000000"}`,
		`{"hold_token":"1_0_00000000000000000000000000000000"}`,
		`{"hold_token":"1_999999_00000000000000000000000000000000"}`,
		`{"hold_token":"1_18446744073709551615_00000000000000000000000000000000"}`,
		`{"hold_token":"9_00000000000000000000000000000000"}`,
		`{"hold_token":"01_00000000000000000000000000000000"}`,
		`{"hold_token":"1_0000000000000000000000000000000G"}`,
		`{"hold_token":"18446744073709551616_00000000000000000000000000000000"}`,
		`{"hold_token":"\u0031_00000000000000000000000000000000"}`,
		`{"hold_token":""}`,
		`{"hold_token":null}`,
		`{"hold_token":1}`,
		`{"hold_token":["@active"]}`,
		`{}`, ``, `null`, `{"hold_token":"@active"`, `{"hold_token":"@active"} {}`,
	} {
		f.Add([]byte(s))
	}
	fx := newFuzzFixture(f, prepareHolds)
	f.Fuzz(func(t *testing.T, body []byte) {
		fx.next()
		body = fx.expand(body)
		status, answer, _ := fx.check(t, fuzzRequest{path: "/api/orders", body: body}, orderAnswers, nil)
		if status >= 300 {
			return
		}
		sent := fastjson.MustParseBytes(body).GetStringBytes("hold_token") // the first one, as the server reads it
		if got, _ := answer["hold_token"].(string); got != string(sent) {
			t.Fatalf("order for token %q answered with %q: %s", sent, got, fx.ctx.Response.Body())
		}
	})
}

// prepareHolds makes an expired hold, a live one and an ordered one on
// product 1.
func prepareHolds(fx *fuzzFixture) map[string]string {
	expired := fx.mustHold(1, 1)
	fx.clock.Advance(engine.DefaultConfig().HoldTTL + time.Second)
	fx.waitReleased(1)
	active := fx.mustHold(1, 2)
	ordered := fx.mustHold(1, 3)
	fx.mustOrder(ordered)
	forged := active
	forged.Secret[len(forged.Secret)-1] ^= 1
	return map[string]string{"@active": active.String(), "@expired": expired.String(), "@ordered": ordered.String(),
		"@forged": forged.String()}
}
