package transport

import (
	"strconv"

	"github.com/flashsale/flashsale/engine"
	"github.com/valyala/fasthttp"
)

// apiError is one error answer: status, docs/API.md's stable code, a sentence for
// a human, and the optional details docs/API.md names.
type apiError struct {
	status       int
	code         string
	message      string
	field        string // validation_failed: the offending field
	available    int64  // insufficient_stock: units available at that instant
	hasAvailable bool
	retryAfter   bool // 503 and 429: send Retry-After
}

// retryAfterSeconds is the Retry-After of overloaded answers: one second is
// long enough for a per-product queue to drain at any sane load.
var retryAfterSeconds = []byte("1")

var hdrRetryAfter = []byte("Retry-After")

// validation builds a 422 validation_failed naming field.
func validation(field, message string) apiError {
	return apiError{status: fasthttp.StatusUnprocessableEntity, code: "validation_failed", message: message, field: field}
}

var (
	errBodyTooLarge = apiError{status: fasthttp.StatusRequestEntityTooLarge, code: "body_too_large",
		message: "The request body is larger than 65536 bytes."}
	errInvalidJSON = apiError{status: fasthttp.StatusBadRequest, code: "invalid_json",
		message: "The request body must be one well-formed JSON object."}
	errKeyRequired = apiError{status: fasthttp.StatusBadRequest, code: "idempotency_key_required",
		message: "Idempotency-Key must be 1 to 255 visible ASCII characters."}
	errInvalidSignature = apiError{status: fasthttp.StatusUnauthorized, code: "invalid_signature",
		message: "X-Signature is missing, malformed, stale or does not match the body."}
	errSignatureReplayed = apiError{status: fasthttp.StatusUnauthorized, code: "signature_replayed",
		message: "This X-Signature was already used under another Idempotency-Key; a signature is good for one delivery."}
	errSignaturesFull = apiError{status: fasthttp.StatusServiceUnavailable, code: "overloaded",
		message: "The server remembers too many webhook signatures right now; retry after the Retry-After delay.", retryAfter: true}
	errUnauthorized = apiError{status: fasthttp.StatusUnauthorized, code: "unauthorized",
		message: "A valid Authorization: Bearer token is required."}
	errNotFound = apiError{status: fasthttp.StatusNotFound, code: "not_found",
		message: "No such endpoint."}
	errMethodNotAllowed = apiError{status: fasthttp.StatusMethodNotAllowed, code: "method_not_allowed",
		message: "This endpoint does not accept that method."}
	errInternal = apiError{status: fasthttp.StatusInternalServerError, code: "internal_error",
		message: "The server failed to handle the request; nothing was acknowledged."}
	errProductNotFound = apiError{status: fasthttp.StatusNotFound, code: "product_not_found",
		message: "No product has that id."}
	errHoldNotFound = apiError{status: fasthttp.StatusNotFound, code: "hold_not_found",
		message: "No hold has that token."}
	errOrderNotFound = apiError{status: fasthttp.StatusNotFound, code: "order_not_found",
		message: "No order has that id."}
	errUnavailable = apiError{status: fasthttp.StatusServiceUnavailable, code: "unavailable",
		message: "The request's partition has no leader or no majority right now; nothing was acknowledged. Retry after the Retry-After delay.", retryAfter: true}
	errLogFailed = apiError{status: fasthttp.StatusServiceUnavailable, code: "unavailable",
		message: "This server's write-ahead log failed; it is stopping. Retry on another instance.", retryAfter: true}
	errShuttingDown = apiError{status: fasthttp.StatusServiceUnavailable, code: "shutting_down",
		message: "The server is shutting down; retry on another instance or later.", retryAfter: true}
)

// codeErrors maps every engine refusal to its HTTP answer.
var codeErrors = [...]apiError{
	engine.CodeProductNotFound: errProductNotFound,
	engine.CodeInsufficientStock: {status: fasthttp.StatusConflict, code: "insufficient_stock",
		message: "Not enough stock is available for this quantity."},
	engine.CodeQtyAboveMax:     validation("qty", "qty is above the product's max_per_hold."),
	engine.CodeInvalidArgument: validation("qty", "qty must be an integer of at least 1."),
	engine.CodeHoldNotFound:    errHoldNotFound,
	engine.CodeHoldExpired: {status: fasthttp.StatusGone, code: "hold_expired",
		message: "The hold has expired and its units were released."},
	engine.CodeOrderNotFound: errOrderNotFound,
	engine.CodeKeyReused: {status: fasthttp.StatusUnprocessableEntity, code: "idempotency_key_reused",
		message: "This Idempotency-Key was already used with a different request."},
	engine.CodeOverloaded: {status: fasthttp.StatusServiceUnavailable, code: "overloaded",
		message: "The server is overloaded; retry after the Retry-After delay.", retryAfter: true},
	engine.CodeShuttingDown: errShuttingDown,
	engine.CodeTooManyQueued: {status: fasthttp.StatusTooManyRequests, code: "too_many_queued_webhooks",
		message: "Too many webhooks are waiting for orders that do not exist yet.", retryAfter: true},
	engine.CodeKeyTableFull: {status: fasthttp.StatusServiceUnavailable, code: "overloaded",
		message: "The server remembers too many idempotency keys; retry after the Retry-After delay.", retryAfter: true},
	engine.CodeJournalFailed: errInternal,
	engine.CodeProductExists: {status: fasthttp.StatusConflict, code: "product_exists",
		message: "A product with that id already exists."},
	engine.CodeUnavailable: errUnavailable,
}

// codeError is the answer for an engine refusal; an unknown code is a 500.
func codeError(c engine.Code) apiError {
	if int(c) < len(codeErrors) && c != engine.OK && codeErrors[c].status != 0 {
		return codeErrors[c]
	}
	return errInternal
}

// appendError appends the JSON body of e.
func appendError(dst []byte, e *apiError) []byte {
	dst = append(dst, '{')
	dst = appendStringField(dst, "error", e.code)
	dst = appendStringField(dst, "message", e.message)
	if e.field != "" {
		dst = appendStringField(dst, "field", e.field)
	}
	if e.hasAvailable {
		dst = strconv.AppendInt(appendKey(dst, "available_stock"), e.available, 10)
	}
	return append(dst, '}')
}
