package transport

import (
	"github.com/flashsale/flashsale/engine"
	"github.com/valyala/fasthttp"
)

// createOrder is POST /api/orders {"hold_token"}: 201 on the hold's first
// use, 200 with the order as it is now on every later one.
func (s *Server) createOrder(ctx *fasthttp.RequestCtx, sc *scratch) {
	obj, ok := readObject(ctx, sc)
	if !ok {
		return
	}
	text, st := stringField(obj, "hold_token")
	if st != fieldOK || len(text) == 0 {
		e := validation("hold_token", "hold_token must be a non-empty string.")
		writeError(ctx, sc, &e)
		return
	}
	token, ok := engine.ParseHoldToken(text)
	if !ok {
		writeError(ctx, sc, &errHoldNotFound)
		return
	}
	eng, ok := s.leader(ctx, sc, token.ProductID)
	if !ok {
		return
	}
	r := eng.CreateOrder(token)
	if r.Code != engine.OK {
		writeCodeError(ctx, sc, r.Code)
		return
	}
	status := fasthttp.StatusOK
	if r.Created {
		status = fasthttp.StatusCreated
	}
	sc.out = appendOrder(sc.out[:0], &r.Order)
	writeJSON(ctx, status, sc.out)
}

// getOrder is GET /api/orders/{id}.
func (s *Server) getOrder(ctx *fasthttp.RequestCtx, sc *scratch) {
	id, ok := parseDecimalID(pathParam(ctx, prefixOrder, ""))
	if !ok {
		writeError(ctx, sc, &errOrderNotFound)
		return
	}
	eng, ok := s.leader(ctx, sc, id)
	if !ok {
		return
	}
	o, code := eng.GetOrder(id)
	if code != engine.OK {
		writeCodeError(ctx, sc, code)
		return
	}
	sc.out = appendOrder(sc.out[:0], &o)
	writeJSON(ctx, fasthttp.StatusOK, sc.out)
}
