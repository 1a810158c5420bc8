package transport

import (
	"bytes"
	"github.com/flashsale/flashsale/transport/fwdlink"
	"runtime/debug"
	"time"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"
)

// handlerFunc handles one request with the request's scratch memory.
type handlerFunc func(s *Server, ctx *fasthttp.RequestCtx, sc *scratch)

// route is one endpoint: its pattern (the access log's and the metrics'
// label, never the raw path), its handler and its metrics.
type route struct {
	name   string // "METHOD /pattern", or a pseudo-route such as "unmatched"
	handle handlerFunc
	stats  *routeStats
}

// paramRoute is a GET route whose one path parameter is the rest of the
// path after prefix.
type paramRoute struct {
	prefix []byte
	route  *route
}

// Path prefixes of the parameterised routes; handlers read their parameter
// from the path with these, whichever way the request was dispatched.
const (
	prefixProduct      = "/api/products/"
	prefixHold         = "/api/holds/"
	prefixOrder        = "/api/orders/"
	prefixAdminProduct = "/api/admin/products/"
	suffixRestock      = "/restock"
)

// routes registers every endpoint of docs/API.md. Admin routes exist only when an
// admin token is configured, so that without one they are plain 404s.
func (s *Server) routes() {
	r := router.New()
	r.RedirectTrailingSlash = false // a strict API: /api/holds/ is not /api/holds
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	r.HandleOPTIONS = false // OPTIONS gets a JSON 405 like any other wrong method
	r.PanicHandler = s.routerPanic

	notFound := s.newRoute("unmatched", func(_ *Server, ctx *fasthttp.RequestCtx, sc *scratch) {
		writeError(ctx, sc, &errNotFound)
	})
	methodNotAllowed := s.newRoute("method_not_allowed", func(_ *Server, ctx *fasthttp.RequestCtx, sc *scratch) {
		dropOptionsFromAllow(ctx)
		writeError(ctx, sc, &errMethodNotAllowed)
	})
	r.NotFound = s.bind(notFound)
	r.MethodNotAllowed = s.bind(methodNotAllowed)
	s.unmatched = notFound

	add := func(method, pattern string, h handlerFunc) *route {
		rt := s.newRoute(method+" "+pattern, h)
		r.Handle(method, pattern, s.bind(rt))
		if method == fasthttp.MethodGet {
			// HEAD is GET without the body (fasthttp drops it), counted
			// under the GET route.
			r.Handle(fasthttp.MethodHead, pattern, s.bind(rt))
		}
		return rt
	}
	add(fasthttp.MethodGet, "/api/products", (*Server).listProducts)
	product := add(fasthttp.MethodGet, "/api/products/{id}", (*Server).getProduct)
	add(fasthttp.MethodPost, "/api/holds", (*Server).createHold)
	hold := add(fasthttp.MethodGet, "/api/holds/{hold_token}", (*Server).getHold)
	add(fasthttp.MethodPost, "/api/orders", (*Server).createOrder)
	order := add(fasthttp.MethodGet, "/api/orders/{id}", (*Server).getOrder)
	add(fasthttp.MethodPost, "/api/payments/webhook", (*Server).paymentWebhook)
	if s.adminEnabled {
		add(fasthttp.MethodPost, "/api/admin/products", (*Server).adminCreateProduct)
		add(fasthttp.MethodPost, "/api/admin/products/{id}/restock", (*Server).adminRestock)
	}
	add(fasthttp.MethodGet, "/healthz", (*Server).health)
	add(fasthttp.MethodGet, "/metrics", (*Server).serveMetrics)
	s.addDashboardRoutes(add)
	add(fasthttp.MethodGet, "/openapi.yaml", (*Server).serveOpenAPI)
	if s.cluster != nil {
		add(fasthttp.MethodGet, "/cluster", (*Server).clusterStatus)
		add(fasthttp.MethodGet, "/cluster/state/{partition}", (*Server).clusterState)
		add(fasthttp.MethodGet, fwdlink.Path, (*Server).forwardLink)
	}

	s.paramGets = []paramRoute{
		{[]byte(prefixProduct), product},
		{[]byte(prefixHold), hold},
		{[]byte(prefixOrder), order},
	}
	s.router = r
}

func (s *Server) newRoute(name string, h handlerFunc) *route {
	return &route{name: name, handle: h, stats: newRouteStats(s.metrics, name)}
}

// bind makes rt a fasthttp handler; the closure is made once, at startup.
func (s *Server) bind(rt *route) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) { s.serve(rt, ctx) }
}

// Handler serves one request. The parameterised GETs (product, hold and
// order reads, the hottest read paths) are matched here, before the router:
// fasthttp/router copies every path parameter into a new string and boxes it
// into the context's user values, two allocations per request that these
// routes avoid by reading the parameter from the path. Everything else, and
// every unmatched path, goes through the router, which also answers 404 and
// 405 for these patterns.
func (s *Server) Handler(ctx *fasthttp.RequestCtx) {
	if ctx.IsGet() {
		path := ctx.Request.URI().PathOriginal()
		for i := range s.paramGets {
			p := &s.paramGets[i]
			if len(path) > len(p.prefix) && bytes.HasPrefix(path, p.prefix) &&
				bytes.IndexByte(path[len(p.prefix):], '/') < 0 {
				s.serve(p.route, ctx)
				return
			}
		}
	}
	s.router.Handler(ctx)
}

// serve runs rt's handler with the clock, the access log, the metrics and
// panic recovery around it.
func (s *Server) serve(rt *route, ctx *fasthttp.RequestCtx) {
	start := time.Now()
	sc := getScratch()
	defer s.finish(rt, ctx, sc, start)
	rt.handle(s, ctx, sc)
}

// finish is deferred by serve: it turns a panic into a 500 JSON answer and an
// error line, then records the request.
func (s *Server) finish(rt *route, ctx *fasthttp.RequestCtx, sc *scratch, start time.Time) {
	if p := recover(); p != nil {
		s.log.Error().Str("route", rt.name).Bytes("method", ctx.Method()).Bytes("path", ctx.Path()).
			Interface("panic", p).Bytes("stack", debug.Stack()).Msg("handler panicked")
		// sc may be half-written by the handler: drop it rather than pool it.
		sc = &scratch{}
		ctx.Response.Reset()
		writeError(ctx, sc, &errInternal)
	} else {
		putScratch(sc)
	}
	elapsed := time.Since(start)
	status := ctx.Response.StatusCode()
	rt.stats.observe(status, elapsed)
	s.logAccess(rt, ctx, status, elapsed)
}

// routerPanic is the router's recovery, a backstop for panics outside any
// route handler (serve recovers those inside).
func (s *Server) routerPanic(ctx *fasthttp.RequestCtx, p any) {
	s.log.Error().Bytes("method", ctx.Method()).Bytes("path", ctx.Path()).Interface("panic", p).
		Bytes("stack", debug.Stack()).Msg("router panicked")
	ctx.Response.Reset()
	writeError(ctx, &scratch{}, &errInternal)
}

// pathParam is the part of the request path after prefix (and before
// suffix). The bytes alias the request.
func pathParam(ctx *fasthttp.RequestCtx, prefix, suffix string) []byte {
	path := ctx.Request.URI().PathOriginal()
	if len(path) < len(prefix)+len(suffix) {
		return nil
	}
	return path[len(prefix) : len(path)-len(suffix)]
}

var hdrAllow = []byte("Allow")

// dropOptionsFromAllow removes OPTIONS from the router's Allow header: the
// router always lists it, but with HandleOPTIONS off OPTIONS is a 405 too.
func dropOptionsFromAllow(ctx *fasthttp.RequestCtx) {
	allow := ctx.Response.Header.PeekBytes(hdrAllow)
	if !bytes.HasPrefix(allow, []byte("OPTIONS, ")) && !bytes.Contains(allow, []byte(", OPTIONS")) {
		return
	}
	var buf [64]byte
	out := buf[:0]
	for part := range bytes.SplitSeq(allow, []byte(", ")) {
		if string(part) == fasthttp.MethodOptions {
			continue
		}
		if len(out) > 0 {
			out = append(out, ", "...)
		}
		out = append(out, part...)
	}
	ctx.Response.Header.SetCanonical(hdrAllow, out)
}
