package transport

import (
	"math"

	"github.com/flashsale/flashsale/engine"
	"github.com/valyala/fasthttp"
)

// createHold is POST /api/holds {"product_id", "qty"} with an optional
// Idempotency-Key. Checks run in a fixed order (size, key, JSON, fields) so
// that a request with several faults always gets the same answer.
func (s *Server) createHold(ctx *fasthttp.RequestCtx, sc *scratch) {
	body, ok := readBody(ctx, sc)
	if !ok {
		return
	}
	key, present, valid := idempotencyKey(ctx)
	if present && !valid {
		writeError(ctx, sc, &errKeyRequired)
		return
	}
	obj, ok := parseObjectOrRefuse(ctx, sc, body)
	if !ok {
		return
	}
	productID, ok := intInRange(obj, "product_id", 1, math.MaxInt64)
	if !ok {
		e := validation("product_id", "product_id must be a positive integer.")
		writeError(ctx, sc, &e)
		return
	}
	qty, ok := intInRange(obj, "qty", 1, math.MaxInt64)
	if !ok {
		e := validation("qty", "qty must be an integer of at least 1.")
		writeError(ctx, sc, &e)
		return
	}
	eng, ok := s.leader(ctx, sc, uint64(productID))
	if !ok {
		return
	}
	r := eng.CreateHold(uint64(productID), qty, key)
	if r.Replayed {
		markReplayed(ctx)
	}
	switch r.Code {
	case engine.OK:
		sc.out = appendHoldCreated(sc.out[:0], &r.Hold)
		writeJSON(ctx, fasthttp.StatusCreated, sc.out)
	case engine.CodeInsufficientStock:
		e := codeError(r.Code)
		e.available, e.hasAvailable = r.Available, true
		writeError(ctx, sc, &e)
	default:
		writeCodeError(ctx, sc, r.Code)
	}
}

// getHold is GET /api/holds/{hold_token}. A token that does not parse names
// no hold: 404 like an unknown one, so probing learns nothing.
func (s *Server) getHold(ctx *fasthttp.RequestCtx, sc *scratch) {
	token, ok := engine.ParseHoldToken(pathParam(ctx, prefixHold, ""))
	if !ok {
		writeError(ctx, sc, &errHoldNotFound)
		return
	}
	eng, ok := s.leader(ctx, sc, token.ProductID)
	if !ok {
		return
	}
	h, code := eng.GetHold(token)
	if code != engine.OK {
		writeCodeError(ctx, sc, code)
		return
	}
	sc.out = appendHold(sc.out[:0], &h)
	writeJSON(ctx, fasthttp.StatusOK, sc.out)
}
