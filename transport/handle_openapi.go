package transport

import (
	"github.com/flashsale/flashsale/docs"
	"github.com/valyala/fasthttp"
)

var contentTypeYAML = []byte("application/yaml")

// serveOpenAPI is GET /openapi.yaml: the OpenAPI 3.1 document of this API,
// the same bytes as docs/openapi.yaml (embedded at build time), so that a
// client generator pointed at a running server gets what it implements.
func (s *Server) serveOpenAPI(ctx *fasthttp.RequestCtx, _ *scratch) {
	ctx.Response.SetStatusCode(fasthttp.StatusOK)
	ctx.Response.Header.SetContentTypeBytes(contentTypeYAML)
	// SetBodyRaw: the embedded bytes are never written to, so the response
	// may point at them instead of copying 30 KB per request.
	ctx.Response.SetBodyRaw(docs.OpenAPI)
}
