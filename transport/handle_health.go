package transport

import "github.com/valyala/fasthttp"

var healthOK = []byte(`{"status":"ok"}`)

// health is GET /healthz: 200 once the server accepts work (the binary
// listens only after the log is replayed), 503 shutting_down while draining.
func (s *Server) health(ctx *fasthttp.RequestCtx, sc *scratch) {
	if s.failed.Load() {
		writeError(ctx, sc, &errLogFailed)
		return
	}
	if s.draining.Load() {
		writeError(ctx, sc, &errShuttingDown)
		return
	}
	if s.cluster != nil && !s.cluster.Healthy() {
		writeError(ctx, sc, &errUnavailable)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, healthOK)
}
