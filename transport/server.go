package transport

import (
	"crypto/sha256"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/fasthttp/router"
	"github.com/flashsale/flashsale/engine"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// Options configure a Server. The zero value serves the public API with no
// webhook signatures, no admin endpoints and a silent log.
type Options struct {
	// Logger receives the access log (successes and client errors sampled,
	// server errors always) and error lines. The zero Logger discards.
	Logger zerolog.Logger

	// AccessSampler samples the access lines of answers below 500. Nil
	// means DefaultAccessSampler: the first 100 lines of every second,
	// then one in 100.
	AccessSampler zerolog.Sampler

	// WebhookSecret turns on X-Signature checks on the payment webhook.
	WebhookSecret []byte

	// AdminToken turns on the admin endpoints behind a Bearer token.
	AdminToken string

	// Now is the clock for signature freshness; nil means time.Now.
	Now func() time.Time

	// ReplayDuration is how long the log replay took, for /metrics.
	ReplayDuration time.Duration

	// Cluster turns on cluster mode: requests are routed to their
	// partition's engine, and forwarded to its leader when this node does
	// not lead it. New's engine is then ignored (nil is fine).
	Cluster Cluster

	// Connections bound the connections of the listeners that Listener
	// wraps; zero fields take the defaults.
	Connections ConnLimits
}

// DefaultAccessSampler keeps the access log useful and cheap under load:
// every line while traffic is light, one in a hundred beyond 100 a second.
func DefaultAccessSampler() zerolog.Sampler {
	return &zerolog.BurstSampler{Burst: 100, Period: time.Second, NextSampler: &zerolog.BasicSampler{N: 100}}
}

// clientWarnLinesPerSecond bounds each kind of warning a client can cause
// (a request refused before routing, a message of fasthttp's own, a refund
// needed): at most this many lines a second of each, the rest dropped, so
// that nobody can flood the log; the metrics still count every one.
const clientWarnLinesPerSecond = 10

// clientWarnSampler is the sampler of one kind of client-caused warning.
func clientWarnSampler() zerolog.Sampler {
	return &zerolog.BurstSampler{Burst: clientWarnLinesPerSecond, Period: time.Second}
}

// Server is the HTTP front end of one engine. Its Handler is safe for
// concurrent use; it keeps no state between requests beyond pools and
// metrics.
type Server struct {
	eng    *engine.Engine
	now    func() time.Time
	log    zerolog.Logger // errors and panics: never sampled
	access zerolog.Logger // access lines below 500: sampled
	warn   zerolog.Logger // what a client can cause: refused before routing, 503s; clientWarnSampler

	router    *router.Router
	paramGets []paramRoute // GET routes served without the router (see Handler)
	unmatched *route       // 404 and 405 answers

	metrics *metrics.Set
	scrape  scrapeFamilies // read at scrape time (family.go)

	webhookSecret []byte
	signatures    *signatureTable // signatures seen, with a secret only (sigreplay.go)
	adminEnabled  bool
	adminDigest   [sha256.Size]byte

	draining atomic.Bool
	failed   atomic.Bool // the log failed: /healthz 503 until the process exits

	cluster         Cluster // nil: single node
	fwd             forwarder
	forwarded       *metrics.Counter
	forwardFailures *metrics.Counter
	forwardedPool   *metrics.Counter // forwards sent over the pool: no link was up
	adminNext       atomic.Uint64    // the admin API's partition rotation

	dash  dashRecorder // the dashboard's history (dashboard.go)
	conns *connLimiter // the connection limits of Listener
}

// New builds the front end of eng.
func New(eng *engine.Engine, opts Options) *Server {
	s := &Server{
		eng:           eng,
		now:           opts.Now,
		log:           opts.Logger,
		metrics:       metrics.NewSet(),
		webhookSecret: append([]byte(nil), opts.WebhookSecret...),
		cluster:       opts.Cluster,
	}
	s.forwarded = s.metrics.NewCounter(`flashsale_cluster_forwarded_total{result="relayed"}`)
	s.forwardFailures = s.metrics.NewCounter(`flashsale_cluster_forwarded_total{result="unavailable"}`)
	s.forwardedPool = s.metrics.NewCounter(`flashsale_cluster_forwarded_pool_total`)
	s.conns = newConnLimiter(s.metrics, opts.Connections)
	if s.now == nil {
		s.now = time.Now
	}
	sampler := opts.AccessSampler
	if sampler == nil {
		sampler = DefaultAccessSampler()
	}
	s.access = opts.Logger.Sample(sampler)
	s.warn = opts.Logger.Sample(clientWarnSampler())
	if len(s.webhookSecret) > 0 {
		s.signatures = newSignatureTable(signatureSeenSlots, int64(signatureTolerance/time.Second))
	}
	if opts.AdminToken != "" {
		s.adminEnabled = true
		s.adminDigest = sha256.Sum256([]byte(opts.AdminToken))
	}
	s.registerEngineMetrics(opts.ReplayDuration)
	s.routes()
	return s
}

// Metrics is the server's metric set, served by GET /metrics, for
// families counted on the hot path (a Counter is one atomic add); each
// needs its HELP text in setFamilyHelp. Figures kept elsewhere and read at
// scrape time go through AddCounter, AddGauge and AddHistogram instead.
func (s *Server) Metrics() *metrics.Set { return s.metrics }

// Fail marks the server as unable to make anything durable (its log
// failed or hangs): /healthz answers 503 from now on, while the process
// stops.
func (s *Server) Fail() { s.failed.Store(true) }

// Drain marks the server as shutting down: /healthz answers 503 from now on,
// so load balancers stop sending work while in-flight requests finish.
func (s *Server) Drain() { s.draining.Store(true) }

// Bounds of a request (docs/API.md, "Limits"). fasthttp reads at most
// readBufferBytes of request line and headers (more is 431
// headers_too_large) and at most bodyBytesMax of body (more is 413
// body_too_large, refused from Content-Length alone before any of the body
// is read, and for a chunked body before the chunk that would cross the
// limit); both through handleRequestError (and expectContinue), after which the connection is
// closed (drained first: see limitedConn.Close). So a connection buffers at
// most readBufferBytes + bodyBytesMax of request.
const (
	bodyBytesMax = 64 << 10
	// headerBytesMax is what docs/API.md promises to serve: 16 KiB of
	// header fields (shoppers' browsers carry big cookies).
	headerBytesMax = 16 << 10
	// requestLineBytesMax is the room left for the request line (method,
	// URI, version) next to headerBytesMax.
	requestLineBytesMax = 4 << 10
	// readBufferBytes is fasthttp's per-connection read buffer, which the
	// request line and headers must fit.
	readBufferBytes = headerBytesMax + requestLineBytesMax
)

// HTTP server limits, sized for a high-throughput JSON API behind keep-alive
// clients: requests are small and answered in milliseconds, so a client
// that needs more than ReadTimeout to send one is broken or hostile.
const (
	readTimeout  = 10 * time.Second
	writeTimeout = 10 * time.Second
	idleTimeout  = 60 * time.Second
)

// HTTPServer returns a fasthttp server for s with the settings above.
func (s *Server) HTTPServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:               s.Handler,
		ErrorHandler:          s.handleRequestError,
		Name:                  "",
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		// The listener's limits (Listener) answer in JSON; fasthttp's
		// own, which answer in plain text, are set so that they never
		// fire: its count of connections may briefly exceed the
		// listener's, which gives a place back as the socket closes,
		// before fasthttp frees its worker.
		Concurrency:        int(2 * s.conns.max),
		ReadBufferSize:     readBufferBytes,
		ReadTimeout:        readTimeout,
		WriteTimeout:       writeTimeout,
		IdleTimeout:        idleTimeout,
		MaxRequestBodySize: bodyBytesMax,
		ExpectHandler:      s.expectContinue,
		// A connection's read and write buffers go back to a pool
		// between requests: 6 KiB of memory per keep-alive connection
		// instead of 16+ (bench/connmem), for one 1-byte allocation per
		// request inside fasthttp.
		ReduceMemoryUsage: true,
		TCPKeepalive:      true,
		CloseOnShutdown:   true,
		// A forwarding link (fwdlink) is a hijacked connection, closed by
		// its own code (and by CloseForwarding), not when its handler
		// returns.
		KeepHijackedConns: true,
		Logger:            fasthttpLogger{s.log.Sample(clientWarnSampler())},
	}
}

// expectContinue decides on a request with Expect: 100-continue: a body
// declared above bodyBytesMax is refused with 413 body_too_large before
// the client is invited to send it.
func (s *Server) expectContinue(ctx *fasthttp.RequestCtx) int {
	if ctx.Request.Header.ContentLength() <= bodyBytesMax {
		return fasthttp.StatusContinue
	}
	sc := getScratch()
	writeError(ctx, sc, &errBodyTooLarge)
	putScratch(sc)
	s.rejected(errBodyTooLarge.status)
	return errBodyTooLarge.status
}

// handleRequestError answers requests that fasthttp could not read: too
// large, malformed, or too slow. The connection is closed after it.
func (s *Server) handleRequestError(ctx *fasthttp.RequestCtx, err error) {
	e := apiError{status: fasthttp.StatusBadRequest, code: "bad_request", message: "The HTTP request is malformed."}
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		e = errBodyTooLarge
	case errors.As(err, &small):
		e = apiError{status: fasthttp.StatusRequestHeaderFieldsTooLarge, code: "headers_too_large",
			message: "The request headers are too large."}
	case errors.As(err, &netErr) && netErr.Timeout():
		e = apiError{status: fasthttp.StatusRequestTimeout, code: "request_timeout",
			message: "The request was not received in time."}
	}
	sc := getScratch()
	writeError(ctx, sc, &e)
	putScratch(sc)
	s.rejected(e.status)
	s.warn.Warn().Err(err).Int("status", e.status).Msg("request refused before routing")
}

// fasthttpLogger sends fasthttp's own messages to zerolog, sampled: a
// client can cause them (a broken connection, a malformed request).
type fasthttpLogger struct{ log zerolog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Warn().Str("component", "fasthttp").Msgf(format, args...)
}
