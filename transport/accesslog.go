package transport

import (
	"time"

	"github.com/valyala/fasthttp"
)

// logAccess writes the access line of one request: the route pattern (never
// the raw path, which holds ids and tokens and has unbounded cardinality),
// the method, the status and the duration. Server errors are always logged,
// at error level; everything else goes through the sampled logger, so that
// a flash sale's thousands of 409s a second do not drown the disk. A 503
// (overloaded, unavailable, shutting down) is what a crowd causes, not a
// bug: it is a warning, through clientWarnSampler.
func (s *Server) logAccess(rt *route, ctx *fasthttp.RequestCtx, status int, elapsed time.Duration) {
	if status == 503 {
		s.warn.Warn().Str("route", rt.name).Bytes("method", ctx.Method()).Int("status", status).
			Float64("duration_ms", float64(elapsed)/float64(time.Millisecond)).Msg("request refused for now")
		return
	}
	if status >= 500 {
		s.log.Error().Str("route", rt.name).Bytes("method", ctx.Method()).Int("status", status).
			Float64("duration_ms", float64(elapsed)/float64(time.Millisecond)).Msg("request failed")
		return
	}
	s.access.Info().Str("route", rt.name).Bytes("method", ctx.Method()).Int("status", status).
		Float64("duration_ms", float64(elapsed)/float64(time.Millisecond)).Msg("request")
}
