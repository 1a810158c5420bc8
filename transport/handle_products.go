package transport

import (
	"github.com/valyala/fasthttp"
)

// listProducts is GET /api/products: every product, ordered by id.
func (s *Server) listProducts(ctx *fasthttp.RequestCtx, sc *scratch) {
	var ok bool
	if sc.products, ok = s.allProducts(ctx, sc, sc.products[:0]); !ok {
		return
	}
	out := append(sc.out[:0], `{"products":[`...)
	for i := range sc.products {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendProduct(out, &sc.products[i])
	}
	sc.out = append(out, ']', '}')
	writeJSON(ctx, fasthttp.StatusOK, sc.out)
}

// getProduct is GET /api/products/{id}. The counts are the published ones:
// every hold whose 201 was sent is in them.
func (s *Server) getProduct(ctx *fasthttp.RequestCtx, sc *scratch) {
	id, ok := parseDecimalID(pathParam(ctx, prefixProduct, ""))
	if !ok {
		writeError(ctx, sc, &errProductNotFound)
		return
	}
	eng, ok := s.productRead(ctx, sc, id)
	if !ok {
		return
	}
	p, ok := eng.Product(id)
	if !ok {
		writeError(ctx, sc, &errProductNotFound)
		return
	}
	sc.out = appendProduct(sc.out[:0], &p)
	writeJSON(ctx, fasthttp.StatusOK, sc.out)
}
