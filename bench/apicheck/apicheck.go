// Package apicheck holds HTTP exchanges to docs/openapi.yaml: every request
// and answer that the transport tests and the end-to-end tests see is
// checked here with kin-openapi (openapi3 + openapi3filter, which validate
// an OpenAPI 3.1 document's schemas as JSON Schema 2020-12). It is imported
// by tests only; the server does not link it.
//
// The rules, for one exchange:
//   - A request to a path or method the document does not have is not
//     validated as a request (there is nothing to validate it against); its
//     answer must be an Error body whose code fits its status: 404
//     not_found, 405 method_not_allowed (with Allow), a refusal made
//     before routing (400 bad_request, 408, 413, 431), or 500
//     internal_error (a panic outside any handler).
//   - A request the document calls invalid (tests of bad input send many on
//     purpose: malformed JSON, missing fields, bad keys) must be refused:
//     its answer must be a 4xx. Sending it is never an error by itself.
//   - Every answer to a documented operation must have a status that
//     operation lists, the headers that status requires, and a body that
//     matches its schema. A HEAD is checked as its GET, without the body.
package apicheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/flashsale/flashsale/docs"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Exchange is one request and the answer it got. Path may carry a query.
type Exchange struct {
	Method     string
	Path       string
	Header     http.Header
	Body       []byte
	Status     int
	RespHeader http.Header
	RespBody   []byte
}

func (ex *Exchange) String() string {
	return fmt.Sprintf("%s %s %q -> %d %q", ex.Method, ex.Path, clip(ex.Body), ex.Status, clip(ex.RespBody))
}

func clip(b []byte) []byte {
	if len(b) > 300 {
		return append(b[:300:300], "..."...)
	}
	return b
}

// Checker validates exchanges against one loaded document. It is safe for
// concurrent use.
type Checker struct {
	doc         *openapi3.T
	router      routers.Router
	errorSchema *openapi3.Schema
}

// preRoutingStatus is the code of each answer the server gives before it
// routes a request (and the router's own 404 and 405): such an answer can
// come back for any path, documented or not.
func init() {
	// The operator's page and its files: text bodies, checked as strings.
	for _, ct := range []string{"text/html", "text/css", "text/javascript"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
	}
}

var preRoutingStatus = map[string]int{
	"not_found":          http.StatusNotFound,
	"method_not_allowed": http.StatusMethodNotAllowed,
	"bad_request":        http.StatusBadRequest,
	"request_timeout":    http.StatusRequestTimeout,
	"body_too_large":     http.StatusRequestEntityTooLarge,
	"headers_too_large":  http.StatusRequestHeaderFieldsTooLarge,
	"internal_error":     http.StatusInternalServerError, // the router's panic backstop
}

var (
	loadOnce   sync.Once
	loaded     *Checker
	loadFailed error
)

// Default is the checker of docs/openapi.yaml (as embedded in package
// docs), loaded and validated once per process.
func Default() (*Checker, error) {
	loadOnce.Do(func() { loaded, loadFailed = New(docs.OpenAPI) })
	return loaded, loadFailed
}

// New loads and validates an OpenAPI document.
func New(document []byte) (*Checker, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(document)
	if err != nil {
		return nil, fmt.Errorf("load OpenAPI document: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("OpenAPI document is invalid: %w", err)
	}
	// The document names an example server; exchanges are matched on
	// their path alone, whatever host and port the test server has.
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route OpenAPI document: %w", err)
	}
	es := doc.Components.Schemas["Error"]
	if es == nil || es.Value == nil {
		return nil, errors.New("OpenAPI document has no components.schemas.Error")
	}
	return &Checker{doc: doc, router: router, errorSchema: es.Value}, nil
}

var validateOptions = &openapi3filter.Options{
	// The admin token's value is the server's business; the document
	// only says where it goes.
	AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
	// An answer whose status the operation does not list is an error.
	IncludeResponseStatus: true,
	MultiError:            true,
}

var headOptions = &openapi3filter.Options{
	AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
	IncludeResponseStatus: true,
	MultiError:            true,
	ExcludeResponseBody:   true, // a HEAD answer has no body
}

// checkSlot lets one Check run at a time in the process. kin-openapi
// compiles every schema it validates against on each call (about 1 ms an
// exchange, 4 ms under -race); run by hundreds of test clients at once,
// that starves the server they test of CPU. One at a time, the checks take
// at most one core and the server keeps the other.
var checkSlot = make(chan struct{}, 1)

// Check reports how ex breaks the document, or nil.
func (c *Checker) Check(ex *Exchange) error {
	checkSlot <- struct{}{}
	defer func() { <-checkSlot }()
	method := ex.Method
	opts := validateOptions
	if method == http.MethodHead {
		method, opts = http.MethodGet, headOptions
	}
	u, err := url.ParseRequestURI(ex.Path)
	if err != nil {
		return fmt.Errorf("%s: unparseable path: %w", ex, err)
	}
	u.Scheme, u.Host = "http", "flashsale.test"
	req, err := http.NewRequest(method, u.String(), bytes.NewReader(ex.Body))
	if err != nil {
		return fmt.Errorf("%s: %w", ex, err)
	}
	req.Header = ex.Header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	if isConnectionRefusal(ex) {
		// The listener's answer to a connection over a limit: written
		// before any request is read, so it may meet any route.
		return nil
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		// Not a documented operation: nothing to validate the request
		// against (deliberate; see the package comment). The answer must
		// still be one of the server's refusals.
		if cerr := c.checkUnrouted(ex, err); cerr != nil {
			return fmt.Errorf("%s: %w", ex, cerr)
		}
		return nil
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)
	var authErr *openapi3filter.SecurityRequirementsError
	if errors.As(reqErr, &authErr) {
		reqErr = nil // see AuthenticationFunc: never the document's to judge
	}
	if reqErr != nil && (ex.Status < 400 || ex.Status > 499) {
		return fmt.Errorf("%s: the document calls the request invalid, yet the answer is not a 4xx: %s", ex, brief(reqErr))
	}
	// ValidateRequest read the body; the response check needs the request
	// only for its route.
	resp := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 ex.Status,
		Header:                 ex.RespHeader,
		Options:                opts,
	}
	resp.SetBodyBytes(ex.RespBody)
	if err := openapi3filter.ValidateResponse(context.Background(), resp); err != nil {
		return fmt.Errorf("%s: the answer breaks %s %s's responses: %s", ex, route.Method, route.Path, brief(err))
	}
	return nil
}

// isConnectionRefusal reports whether ex was answered by the listener's
// connection limits (docs/API.md, "Limits"): 503 overloaded with
// Retry-After, in the Error shape.
func isConnectionRefusal(ex *Exchange) bool {
	if ex.Status != http.StatusServiceUnavailable || ex.RespHeader.Get("Retry-After") == "" {
		return false
	}
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	return json.Unmarshal(ex.RespBody, &e) == nil && e.Error == "overloaded" && e.Message != ""
}

// checkUnrouted checks the answer to a request the document has no
// operation for.
func (c *Checker) checkUnrouted(ex *Exchange, routeErr error) error {
	var code string
	if ex.Method != http.MethodHead {
		var v any
		if err := json.Unmarshal(ex.RespBody, &v); err != nil {
			return fmt.Errorf("answer to an undocumented route (%v) is not JSON: %v", routeErr, err)
		}
		if err := c.errorSchema.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
			return fmt.Errorf("answer to an undocumented route (%v) is not an Error: %v", routeErr, err)
		}
		code, _ = v.(map[string]any)["error"].(string)
		if want, ok := preRoutingStatus[code]; !ok || want != ex.Status {
			return fmt.Errorf("answer to an undocumented route (%v): %d %s; want 404 not_found, 405 method_not_allowed or a refusal before routing", routeErr, ex.Status, code)
		}
	} else if _, ok := statusCodes[ex.Status]; !ok {
		return fmt.Errorf("answer to an undocumented route (%v): HEAD got %d", routeErr, ex.Status)
	}
	if ex.Status == http.StatusMethodNotAllowed && ex.RespHeader.Get("Allow") == "" {
		return errors.New("405 without an Allow header")
	}
	if ct := ex.RespHeader.Get("Content-Type"); ex.Method != http.MethodHead && !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("error answer with Content-Type %q", ct)
	}
	return nil
}

// statusCodes are the statuses of preRoutingStatus.
var statusCodes = func() map[int]bool {
	m := map[int]bool{}
	for _, s := range preRoutingStatus {
		m[s] = true
	}
	return m
}()

// briefBytesMax bounds a validation error in a test's output: kin-openapi
// appends the whole schema and value to each error, which for a document
// like this one runs to hundreds of lines.
const briefBytesMax = 1500

// brief is err's text, cut at the first schema dump and at briefBytesMax.
func brief(err error) string {
	s := err.Error()
	if i := strings.Index(s, "\nSchema:"); i >= 0 {
		s = s[:i]
	}
	if len(s) > briefBytesMax {
		s = s[:briefBytesMax] + "..."
	}
	return s
}
