package transport

import (
	"bytes"
	"fmt"
	"github.com/flashsale/flashsale/engine"
	"io"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
)

// Metrics use github.com/VictoriaMetrics/metrics rather than
// prometheus/client_golang: a counter increment is one atomic add on a
// pointer we keep, with no label-map lookup, no hashing and no allocation
// per request, and the whole package is a few files with no dependencies.
// The label lookup that client_golang's WithLabelValues does on every call
// would be the most expensive thing on the hold path.

// latencyBucketsSeconds are the request latency histogram's upper bounds:
// from 100 µs (a product read) to 10 s (a timeout), dense around the
// milliseconds an fsync takes.
var latencyBucketsSeconds = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// statusSlots covers every valid HTTP status code as an array index.
const statusSlots = 600

// routeStats are one route's request counters by status and its latency
// histogram. Counters are created on first use of a status and then read
// with one atomic load.
type routeStats struct {
	set      *metrics.Set
	route    string
	latency  *metrics.PrometheusHistogram
	byStatus [statusSlots]atomic.Pointer[metrics.Counter]
}

func newRouteStats(set *metrics.Set, route string) *routeStats {
	return &routeStats{
		set:   set,
		route: route,
		latency: set.NewPrometheusHistogramExt(
			fmt.Sprintf(`flashsale_http_request_duration_seconds{route=%q}`, route), latencyBucketsSeconds),
	}
}

func (r *routeStats) observe(status int, elapsed time.Duration) {
	if status < 100 || status >= statusSlots {
		status = fasthttp.StatusInternalServerError
	}
	c := r.byStatus[status].Load()
	if c == nil {
		c = r.set.GetOrCreateCounter(fmt.Sprintf(`flashsale_http_requests_total{route=%q,status="%d"}`, r.route, status))
		r.byStatus[status].Store(c)
	}
	c.Inc()
	r.latency.Update(elapsed.Seconds())
}

// rejected counts a request that fasthttp refused before routing.
func (s *Server) rejected(status int) {
	s.metrics.GetOrCreateCounter(fmt.Sprintf(`flashsale_http_requests_total{route="rejected",status="%d"}`, status)).Inc()
}

// setFamilyHelp is the HELP text of the families kept in the server's
// metrics.Set (counted on the hot path): github.com/VictoriaMetrics/metrics
// writes their TYPE but no HELP text, which writeWithHelp fills in from
// here. A family added to the Set needs its line here.
var setFamilyHelp = map[string]string{
	"flashsale_http_requests_total":            "HTTP requests answered, by route pattern and status; route=\"rejected\" counts requests refused before routing.",
	"flashsale_http_request_duration_seconds":  "Time from reading a request to writing its answer, by route pattern.",
	"flashsale_cluster_forwarded_total":        "Cluster mode: requests for a partition this node does not lead, relayed to its leader or answered 503 unavailable.",
	"flashsale_cluster_forwarded_pool_total":   "Cluster mode: forwarded requests sent over the keep-alive connection pool because no forwarding link to the leader was up.",
	"flashsale_http_connections_open":          "Client connections open now (those the listener admitted).",
	"flashsale_http_connections_refused_total": "Connections answered 503 overloaded and closed, by the limit they exceeded: total (--connections-max) or per_ip (--connections-per-ip-max).",
	"flashsale_http_accept_file_limit_total":   "Times accepting a connection failed because the process ran out of file descriptors (the listener backs off and retries).",
}

// registerEngineMetrics exposes the engine's counts, read at scrape time,
// so the hot path pays nothing for them. Counts since the process started
// are counters (they restart from zero with the process: a snapshot does
// not carry them); values now are gauges.
// In cluster mode they are the sums over the partitions' engines this node
// holds now (a replica's count what it replayed).
func (s *Server) registerEngineMetrics(replay time.Duration) {
	// The Set's families and the process figures get their TYPE lines
	// (and empty HELP lines, which writeWithHelp fills) from the library;
	// the switch is global to the process.
	metrics.ExposeMetadata(true)
	s.metrics.RegisterMetricsWriter(s.scrape.write)
	sum := func(field func(*engine.Stats) *atomic.Int64) func() float64 {
		return func() float64 {
			var n int64
			for _, e := range s.engines() {
				n += field(e.Stats()).Load()
			}
			return float64(n)
		}
	}
	stat := func(labels string, field func(*engine.Stats) *atomic.Int64) Series {
		return Series{Labels: labels, Value: sum(field)}
	}
	s.AddCounter("flashsale_holds_total", "Holds since the process started, by event: created, expired, and answers replayed under an idempotency key.",
		stat(`{event="created"}`, func(st *engine.Stats) *atomic.Int64 { return &st.HoldsCreated }),
		stat(`{event="expired"}`, func(st *engine.Stats) *atomic.Int64 { return &st.HoldsExpired }),
		stat(`{event="replayed"}`, func(st *engine.Stats) *atomic.Int64 { return &st.HoldsReplayed }))
	s.AddCounter("flashsale_orders_total", "Orders since the process started, by event: created, paid, cancelled (payment failed), timed_out (payment window over).",
		stat(`{event="created"}`, func(st *engine.Stats) *atomic.Int64 { return &st.OrdersCreated }),
		stat(`{event="paid"}`, func(st *engine.Stats) *atomic.Int64 { return &st.OrdersPaid }),
		stat(`{event="cancelled"}`, func(st *engine.Stats) *atomic.Int64 { return &st.OrdersCancelled }),
		stat(`{event="timed_out"}`, func(st *engine.Stats) *atomic.Int64 { return &st.OrdersTimedOut }))
	s.AddGauge("flashsale_orders", "Orders by status now: pending orders await their payment (restored with a snapshot, so right after a restart).",
		stat(`{status="pending"}`, func(st *engine.Stats) *atomic.Int64 { return &st.OrdersPending }))
	s.AddCounter("flashsale_webhooks_total", "Payment webhooks since the process started, by result: applied, not_applied (order already final), queued (order not known yet), replayed (same key).",
		stat(`{result="applied"}`, func(st *engine.Stats) *atomic.Int64 { return &st.WebhooksApplied }),
		stat(`{result="not_applied"}`, func(st *engine.Stats) *atomic.Int64 { return &st.WebhooksNotApplied }),
		stat(`{result="queued"}`, func(st *engine.Stats) *atomic.Int64 { return &st.WebhooksQueued }),
		stat(`{result="replayed"}`, func(st *engine.Stats) *atomic.Int64 { return &st.WebhooksReplayed }))
	s.AddCounter("flashsale_refunds_needed_total", "Successful payments for orders already cancelled: money to refund.",
		stat("", func(st *engine.Stats) *atomic.Int64 { return &st.RefundsNeeded }))
	s.AddCounter("flashsale_wal_records_replayed_total", "Log records replayed into the engines since the process started.",
		stat("", func(st *engine.Stats) *atomic.Int64 { return &st.RecordsReplayed }))
	s.AddGauge("flashsale_idempotency_keys", "Answers remembered under idempotency keys now, holds and webhooks together.",
		stat("", func(st *engine.Stats) *atomic.Int64 { return &st.IdempotencyKeys }))
	s.AddGauge("flashsale_idempotency_key_bytes", "Memory the remembered answers take now, in bytes (keys, arenas, indexes).",
		stat("", func(st *engine.Stats) *atomic.Int64 { return &st.IdempotencyKeyBytes }))
	s.AddGauge("flashsale_idempotency_key_bytes_max", "The key budget in bytes (--idempotency-key-bytes-max); new keys are refused 503 overloaded at it, a warning is logged at 80 %.",
		Series{Value: func() float64 {
			var n int64
			for _, e := range s.engines() {
				n += e.IdempotencyKeyBytesMax()
			}
			return float64(n)
		}})
	s.AddCounter("flashsale_idempotency_keys_refused_total", "Requests under a new idempotency key refused because the key budget was full.",
		stat("", func(st *engine.Stats) *atomic.Int64 { return &st.IdempotencyKeysRefused }))
	seconds := replay.Seconds()
	s.AddGauge("flashsale_replay_seconds", "How long the start-up replay of the log took.", Series{Value: func() float64 { return seconds }})
	s.metrics.RegisterMetricsWriter(s.writeStockMetrics)
}

// writeStockMetrics writes every product's published stock counts.
func (s *Server) writeStockMetrics(w io.Writer) {
	var products []engine.Product
	for _, e := range s.engines() {
		products = e.Products(products)
	}
	b := appendMetadata(nil, "flashsale_product_stock", "Units of a product now, by kind: total = available + reserved + sold.", typeGauge)
	for _, p := range products {
		b = fmt.Appendf(b, "flashsale_product_stock{product=\"%d\",kind=\"total\"} %d\n", p.ID, p.TotalStock)
		b = fmt.Appendf(b, "flashsale_product_stock{product=\"%d\",kind=\"available\"} %d\n", p.ID, p.Available)
		b = fmt.Appendf(b, "flashsale_product_stock{product=\"%d\",kind=\"reserved\"} %d\n", p.ID, p.Reserved)
		b = fmt.Appendf(b, "flashsale_product_stock{product=\"%d\",kind=\"sold\"} %d\n", p.ID, p.Sold)
	}
	w.Write(b)
}

var contentTypePrometheus = []byte("text/plain; version=0.0.4; charset=utf-8")

// serveMetrics is GET /metrics: the server's set (its own families, then
// those read at scrape time), then Go and process figures; every family
// with its HELP and TYPE lines.
func (s *Server) serveMetrics(ctx *fasthttp.RequestCtx, _ *scratch) {
	ctx.Response.Header.SetContentTypeBytes(contentTypePrometheus)
	var page bytes.Buffer
	s.metrics.WritePrometheus(&page)
	metrics.WriteProcessMetrics(&page)
	writeWithHelp(ctx, page.Bytes())
}
