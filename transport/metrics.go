package transport

import (
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

// registerEngineMetrics exposes the engine's counters, read at scrape time,
// so the hot path pays nothing for them.
// In cluster mode they are the sums over the partitions' engines this node
// holds now (a replica's count what it replayed).
func (s *Server) registerEngineMetrics(replay time.Duration) {
	sum := func(field func(*engine.Stats) *atomic.Int64) int64 {
		var n int64
		for _, e := range s.engines() {
			n += field(e.Stats()).Load()
		}
		return n
	}
	gauge := func(name string, field func(*engine.Stats) *atomic.Int64) {
		s.metrics.NewGauge(name, func() float64 { return float64(sum(field)) })
	}
	gauge(`flashsale_holds_total{event="created"}`, func(st *engine.Stats) *atomic.Int64 { return &st.HoldsCreated })
	gauge(`flashsale_holds_total{event="expired"}`, func(st *engine.Stats) *atomic.Int64 { return &st.HoldsExpired })
	gauge(`flashsale_holds_total{event="replayed"}`, func(st *engine.Stats) *atomic.Int64 { return &st.HoldsReplayed })
	gauge(`flashsale_orders_total{event="created"}`, func(st *engine.Stats) *atomic.Int64 { return &st.OrdersCreated })
	gauge(`flashsale_orders_total{event="paid"}`, func(st *engine.Stats) *atomic.Int64 { return &st.OrdersPaid })
	gauge(`flashsale_orders_total{event="cancelled"}`, func(st *engine.Stats) *atomic.Int64 { return &st.OrdersCancelled })
	gauge(`flashsale_orders_total{event="timed_out"}`, func(st *engine.Stats) *atomic.Int64 { return &st.OrdersTimedOut })
	gauge(`flashsale_webhooks_total{result="applied"}`, func(st *engine.Stats) *atomic.Int64 { return &st.WebhooksApplied })
	gauge(`flashsale_webhooks_total{result="not_applied"}`, func(st *engine.Stats) *atomic.Int64 { return &st.WebhooksNotApplied })
	gauge(`flashsale_webhooks_total{result="queued"}`, func(st *engine.Stats) *atomic.Int64 { return &st.WebhooksQueued })
	gauge(`flashsale_webhooks_total{result="replayed"}`, func(st *engine.Stats) *atomic.Int64 { return &st.WebhooksReplayed })
	gauge(`flashsale_refunds_needed_total`, func(st *engine.Stats) *atomic.Int64 { return &st.RefundsNeeded })
	gauge(`flashsale_wal_records_replayed_total`, func(st *engine.Stats) *atomic.Int64 { return &st.RecordsReplayed })
	s.metrics.NewGauge(`flashsale_orders{status="pending"}`, func() float64 {
		return float64(sum(func(st *engine.Stats) *atomic.Int64 { return &st.OrdersCreated }) -
			sum(func(st *engine.Stats) *atomic.Int64 { return &st.OrdersPaid }) -
			sum(func(st *engine.Stats) *atomic.Int64 { return &st.OrdersCancelled }) -
			sum(func(st *engine.Stats) *atomic.Int64 { return &st.OrdersTimedOut }))
	})
	seconds := replay.Seconds()
	s.metrics.NewGauge(`flashsale_replay_seconds`, func() float64 { return seconds })
	s.metrics.RegisterMetricsWriter(s.writeStockMetrics)
}

// writeStockMetrics writes every product's published stock counts.
func (s *Server) writeStockMetrics(w io.Writer) {
	var products []engine.Product
	for _, e := range s.engines() {
		products = e.Products(products)
	}
	for _, p := range products {
		fmt.Fprintf(w, "flashsale_product_stock{product=\"%d\",kind=\"total\"} %d\n", p.ID, p.TotalStock)
		fmt.Fprintf(w, "flashsale_product_stock{product=\"%d\",kind=\"available\"} %d\n", p.ID, p.Available)
		fmt.Fprintf(w, "flashsale_product_stock{product=\"%d\",kind=\"reserved\"} %d\n", p.ID, p.Reserved)
		fmt.Fprintf(w, "flashsale_product_stock{product=\"%d\",kind=\"sold\"} %d\n", p.ID, p.Sold)
	}
}

var contentTypePrometheus = []byte("text/plain; version=0.0.4; charset=utf-8")

// serveMetrics is GET /metrics: the server's set, then Go and process figures.
func (s *Server) serveMetrics(ctx *fasthttp.RequestCtx, _ *scratch) {
	ctx.Response.Header.SetContentTypeBytes(contentTypePrometheus)
	s.metrics.WritePrometheus(ctx)
	metrics.WriteProcessMetrics(ctx)
}
