package transport

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"unicode/utf8"

	"github.com/flashsale/flashsale/engine"
	"github.com/valyala/fasthttp"
)

// Admin input limits: far above any real catalog, far below int64 overflow
// in stock and amount arithmetic.
const (
	productNameBytesMax = 200
	priceCentsMax       = 1_000_000_000_000
	stockMax            = engine.StockMax
	maxPerHoldMax       = 1_000_000
)

var (
	hdrAuthorization = []byte("Authorization")
	bearerPrefix     = []byte("Bearer ")
)

// authorized checks "Authorization: Bearer <token>". Both sides are hashed
// first so that the constant-time compare also hides the token's length.
func (s *Server) authorized(ctx *fasthttp.RequestCtx) bool {
	h := ctx.Request.Header.PeekBytes(hdrAuthorization)
	if !bytes.HasPrefix(h, bearerPrefix) {
		return false
	}
	got := sha256.Sum256(h[len(bearerPrefix):])
	return subtle.ConstantTimeCompare(got[:], s.adminDigest[:]) == 1
}

// adminCreateProduct is POST /api/admin/products {"name", "price_cents",
// "total_stock", "max_per_hold"?}: 201 with the new product (id assigned).
func (s *Server) adminCreateProduct(ctx *fasthttp.RequestCtx, sc *scratch) {
	if !s.authorized(ctx) {
		writeError(ctx, sc, &errUnauthorized)
		return
	}
	obj, ok := readObject(ctx, sc)
	if !ok {
		return
	}
	name, st := stringField(obj, "name")
	if st != fieldOK || len(name) == 0 || len(name) > productNameBytesMax || !utf8.Valid(name) {
		e := validation("name", "name must be a non-empty string of at most 200 bytes.")
		writeError(ctx, sc, &e)
		return
	}
	price, ok := intInRange(obj, "price_cents", 0, priceCentsMax)
	if !ok {
		e := validation("price_cents", "price_cents must be an integer from 0 to 1000000000000.")
		writeError(ctx, sc, &e)
		return
	}
	total, ok := intInRange(obj, "total_stock", 0, stockMax)
	if !ok {
		e := validation("total_stock", "total_stock must be an integer from 0 to 1000000000000.")
		writeError(ctx, sc, &e)
		return
	}
	maxPerHold, st := intField(obj, "max_per_hold")
	switch {
	case st == fieldAbsent:
		maxPerHold = engine.DefaultMaxPerHold
	case st == fieldInvalid || maxPerHold < 1 || maxPerHold > maxPerHoldMax:
		e := validation("max_per_hold", "max_per_hold must be an integer from 1 to 1000000.")
		writeError(ctx, sc, &e)
		return
	}
	eng := s.eng
	if s.cluster != nil {
		if eng, ok = s.leaderOf(ctx, sc, s.adminPartition()); !ok {
			return
		}
	}
	p, code := eng.CreateProduct(engine.ProductSpec{Name: string(name), PriceCents: price,
		TotalStock: total, MaxPerHold: maxPerHold})
	if code != engine.OK {
		writeCodeError(ctx, sc, code)
		return
	}
	sc.out = appendProduct(sc.out[:0], &p)
	writeJSON(ctx, fasthttp.StatusCreated, sc.out)
}

// adminRestock is POST /api/admin/products/{id}/restock {"qty"}: adds qty
// units to total and available stock.
func (s *Server) adminRestock(ctx *fasthttp.RequestCtx, sc *scratch) {
	if !s.authorized(ctx) {
		writeError(ctx, sc, &errUnauthorized)
		return
	}
	id, ok := parseDecimalID(pathParam(ctx, prefixAdminProduct, suffixRestock))
	if !ok {
		writeError(ctx, sc, &errProductNotFound)
		return
	}
	obj, ok := readObject(ctx, sc)
	if !ok {
		return
	}
	qty, ok := intInRange(obj, "qty", 1, stockMax)
	if !ok {
		e := validation("qty", "qty must be an integer from 1 to 1000000000000.")
		writeError(ctx, sc, &e)
		return
	}
	eng, ok := s.leader(ctx, sc, id)
	if !ok {
		return
	}
	p, code := eng.Restock(id, qty)
	switch code {
	case engine.OK:
	case engine.CodeInvalidArgument:
		// qty itself is in range: the actor found that the total would pass
		// the limit (it checks, so that concurrent restocks cannot pass it
		// together).
		e := validation("qty", "total_stock would exceed 1000000000000.")
		writeError(ctx, sc, &e)
		return
	default:
		writeCodeError(ctx, sc, code)
		return
	}
	sc.out = appendProduct(sc.out[:0], &p)
	writeJSON(ctx, fasthttp.StatusOK, sc.out)
}
