package transport

import (
	"github.com/flashsale/flashsale/engine"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"
)

var (
	contentTypeJSON       = []byte("application/json")
	hdrIdempotentReplayed = []byte("Idempotent-Replayed")
	hdrTrue               = []byte("true")
)

// writeJSON sets status and the JSON body. The body is copied into the
// response, so body may be reused as soon as writeJSON returns.
func writeJSON(ctx *fasthttp.RequestCtx, status int, body []byte) {
	ctx.Response.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.Response.SetBody(body)
}

// writeCodeError answers an engine refusal with its status and error code.
func writeCodeError(ctx *fasthttp.RequestCtx, sc *scratch, c engine.Code) {
	e := codeError(c)
	writeError(ctx, sc, &e)
}

// writeError answers with e, using sc's buffer.
func writeError(ctx *fasthttp.RequestCtx, sc *scratch, e *apiError) {
	sc.out = appendError(sc.out[:0], e)
	if e.retryAfter {
		ctx.Response.Header.SetCanonical(hdrRetryAfter, retryAfterSeconds)
	}
	writeJSON(ctx, e.status, sc.out)
}

// markReplayed adds docs/API.md's replay header to an idempotent replay.
func markReplayed(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.SetCanonical(hdrIdempotentReplayed, hdrTrue)
}

// readBody returns the request body, or answers 413 and reports false when
// it is above docs/API.md's 64 KiB.
func readBody(ctx *fasthttp.RequestCtx, sc *scratch) ([]byte, bool) {
	body := ctx.PostBody()
	if len(body) > bodyBytesMax {
		writeError(ctx, sc, &errBodyTooLarge)
		return nil, false
	}
	return body, true
}

// readObject reads the request body as a JSON object, answering 413
// body_too_large or 400 invalid_json itself when it is not one.
func readObject(ctx *fasthttp.RequestCtx, sc *scratch) (*fastjson.Value, bool) {
	body, ok := readBody(ctx, sc)
	if !ok {
		return nil, false
	}
	return parseObjectOrRefuse(ctx, sc, body)
}

// parseObjectOrRefuse parses body as a JSON object, answering 400
// invalid_json itself when it is not one.
func parseObjectOrRefuse(ctx *fasthttp.RequestCtx, sc *scratch, body []byte) (*fastjson.Value, bool) {
	obj, ok := sc.parseObject(body)
	if !ok {
		writeError(ctx, sc, &errInvalidJSON)
	}
	return obj, ok
}
