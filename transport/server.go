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
	adminNext       atomic.Uint64 // the admin API's partition rotation

	dash dashRecorder // the dashboard's history (dashboard.go)
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

// Bounds of the request body. docs/api.md accepts 65,536 bytes and refuses one
// more with a JSON 413 from the handler. fasthttp reads bodies up to
// bodyReadBytesMax so that moderate oversizes are read whole and get that
// clean answer on a connection that stays usable; beyond it, fasthttp stops
// reading and ErrorHandler answers 413 and closes the connection.
const (
	bodyBytesMax     = 64 << 10
	bodyReadBytesMax = 1 << 20
)

// HTTP server limits, sized for a high-throughput JSON API behind keep-alive
// clients: requests are small and answered in milliseconds, so a client
// that needs more than ReadTimeout to send one is broken or hostile.
const (
	readTimeout  = 10 * time.Second
	writeTimeout = 10 * time.Second
	idleTimeout  = 60 * time.Second
	// concurrencyMax bounds the connections served at once; the engine's
	// per-product queues bound the work behind them.
	concurrencyMax = 64 * 1024
)

// HTTPServer returns a fasthttp server for s with the settings above.
func (s *Server) HTTPServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:               s.Handler,
		ErrorHandler:          s.handleRequestError,
		Name:                  "",
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		Concurrency:           concurrencyMax,
		ReadTimeout:           readTimeout,
		WriteTimeout:          writeTimeout,
		IdleTimeout:           idleTimeout,
		MaxRequestBodySize:    bodyReadBytesMax,
		ReduceMemoryUsage:     false,
		TCPKeepalive:          true,
		CloseOnShutdown:       true,
		Logger:                fasthttpLogger{s.log.Sample(clientWarnSampler())},
	}
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
