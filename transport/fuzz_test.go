package transport

import (
	"encoding/json"
	"testing"
)

// FuzzHoldBody feeds arbitrary bodies to POST /api/holds: every answer must
// be one JSON object with an API status, and the stock arithmetic must hold.
// `go test` runs the seeds; `go test -fuzz=FuzzHoldBody ./transport` explores.
func FuzzHoldBody(f *testing.F) {
	for _, s := range []string{`{"product_id":1,"qty":1}`, `{"product_id":1,"qty":1.5}`, `{"product_id":"1"}`,
		`{}`, ``, `[`, `{"product_id":1,"qty":1} x`, `{"product_id":-1,"qty":99999999999999999999}`, "{\"a\":\"\\ud800\"}"} {
		f.Add([]byte(s))
	}
	fx := newBenchFixture(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		status := fx.serve("POST", "/api/holds", body)
		switch status {
		case 201, 400, 404, 409, 413, 422:
		default:
			t.Fatalf("status %d for %q", status, body)
		}
		var m map[string]any
		if err := json.Unmarshal(fx.ctx.Response.Body(), &m); err != nil {
			t.Fatalf("answer %q to %q is not a JSON object", fx.ctx.Response.Body(), body)
		}
		if err := fx.eng.CheckInvariant(); err != nil {
			t.Fatal(err)
		}
	})
}
