package apicheck

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// Tally checks exchanges for clients that have no *testing.T at hand (the
// crash and cluster tests' HTTP clients) and keeps the breaks, for a
// TestMain to report after the run. Safe for concurrent use; the zero
// value is ready.
type Tally struct {
	checked atomic.Int64
	mu      sync.Mutex
	errs    []error
	count   int
}

// tallyErrorsKept is how many breaks a Tally keeps; the rest are counted.
const tallyErrorsKept = 20

// Check checks one exchange against docs/openapi.yaml.
func (t *Tally) Check(ex *Exchange) {
	t.checked.Add(1)
	c, err := Default()
	if err == nil {
		err = c.Check(ex)
	}
	if err != nil {
		t.record(fmt.Errorf("docs/openapi.yaml: %w", err))
	}
}

// CheckHTTP checks req (whose body was body) and the answer resp (whose
// body was respBody, already read).
func (t *Tally) CheckHTTP(req *http.Request, body []byte, resp *http.Response, respBody []byte) {
	t.Check(&Exchange{Method: req.Method, Path: req.URL.RequestURI(), Header: req.Header, Body: body,
		Status: resp.StatusCode, RespHeader: resp.Header, RespBody: respBody})
}

func (t *Tally) record(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.count++
	if len(t.errs) < tallyErrorsKept {
		t.errs = append(t.errs, err)
	}
}

// Checked is how many exchanges were checked.
func (t *Tally) Checked() int64 { return t.checked.Load() }

// Errors returns the first breaks (at most tallyErrorsKept) and how many
// there were in all.
func (t *Tally) Errors() ([]error, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]error(nil), t.errs...), t.count
}

// Report writes the breaks to w and reports whether there were none.
func (t *Tally) Report(w io.Writer) bool {
	errs, n := t.Errors()
	for _, err := range errs {
		fmt.Fprintln(w, err)
	}
	if n > len(errs) {
		fmt.Fprintf(w, "... and %d more breaks of docs/openapi.yaml\n", n-len(errs))
	}
	if n > 0 {
		fmt.Fprintf(w, "docs/openapi.yaml: %d of %d exchanges broke it\n", n, t.Checked())
	}
	return n == 0
}
