package transport

import (
	"flag"
	"net/http"
	"testing"

	"github.com/flashsale/flashsale/bench/apicheck"
)

// fuzzing reports whether the fuzzing engine is running (go test -fuzz),
// as opposed to the seed corpus alone (make test).
func fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	return f != nil && f.Value.String() != ""
}

// checkFuzzContract holds a fuzz input's answer to docs/openapi.yaml.
//
// Fuzz inputs are garbage by design, so no request rule of the document is
// asserted on them, explicitly: bench/apicheck only requires that a
// request the document calls invalid is refused with a 4xx, and that an
// answer (to any request) has a status its operation lists and a body its
// schema allows. The seed corpora, which make test runs, are checked;
// while the fuzzing engine runs the check is skipped, because kin-openapi's
// validation would cut the executions per second several times over, and
// the fixture's own checks (check) still run on every input.
func (fx *fuzzFixture) checkFuzzContract(t *testing.T, req fuzzRequest) {
	t.Helper()
	if fuzzing() {
		return
	}
	c, err := apicheck.Default()
	if err != nil {
		t.Fatal(err)
	}
	reqHeader := http.Header{}
	for k, v := range fx.ctx.Request.Header.All() {
		reqHeader.Add(string(k), string(v))
	}
	respHeader := http.Header{}
	for k, v := range fx.ctx.Response.Header.All() {
		respHeader.Add(string(k), string(v))
	}
	ex := apicheck.Exchange{Method: string(fx.ctx.Method()), Path: string(fx.ctx.Request.Header.RequestURI()), // as sent, not normalised
		Header: reqHeader, Body: append([]byte(nil), fx.ctx.Request.Body()...),
		Status: fx.ctx.Response.StatusCode(), RespHeader: respHeader, RespBody: append([]byte(nil), fx.ctx.Response.Body()...)}
	if err := c.Check(&ex); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
}
