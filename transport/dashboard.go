package transport

import (
	"bytes"
	"cmp"
	"math"
	"mime"
	"path"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/transport/dashboard"
	"github.com/valyala/fasthttp"
)

// The operator's page (docs/API.md, "The dashboard"): GET /dashboard serves
// it, GET /dashboard/stats the JSON it polls every second, GET
// /dashboard/assets/{file} its script, style sheet and the vendored uPlot.
// Everything is embedded in the binary: an operator behind a strict proxy or
// offline still gets the whole page.
//
// The figures are the ones /metrics serves: the engines' Stats (the atomics
// the flashsale_holds_total... gauges read) and the metric set's own text
// (request counters, latency histograms, the log's batches), parsed once a
// second by the recorder. The page reads nothing the scrape does not.

// Dashboard limits. The recorder keeps dashboardHistorySamples one-second
// samples (five minutes) in a fixed ring, whatever the load: the memory is
// bounded by the const, not by the traffic.
const (
	dashboardSampleInterval = time.Second
	dashboardHistorySamples = 300
	// dashboardGapInterval: a sample taken this long or longer after the
	// previous one (the recorder was stopped, or the process stalled)
	// carries no rates, so that the chart shows a gap rather than an
	// average over the pause.
	dashboardGapInterval = 3 * dashboardSampleInterval
)

// Paths of the page.
const (
	pathDashboard        = "/dashboard"
	pathDashboardStats   = "/dashboard/stats"
	prefixDashboardAsset = "/dashboard/assets/"
)

// dashboardRoutes are the routes of the tracked latencies: the page shows
// their p50 and p99, under the JSON names of the same index.
var dashboardRoutes = [...]string{"POST /api/holds", "POST /api/orders", "POST /api/payments/webhook", "GET /api/products/{id}"}
var dashboardRouteNames = [len(dashboardRoutes)]string{"holds", "orders", "webhook", "product"}

// dashAsset is one embedded file with its content type.
type dashAsset struct {
	body        []byte
	contentType string
}

// dashboardAssets maps a file name under /dashboard/assets/ (and
// "index.html", served at /dashboard) to its bytes.
var dashboardAssets = func() map[string]dashAsset {
	entries, err := dashboard.Files.ReadDir(".")
	if err != nil {
		panic(err)
	}
	out := make(map[string]dashAsset, len(entries))
	for _, e := range entries {
		body, err := dashboard.Files.ReadFile(e.Name())
		if err != nil {
			panic(err)
		}
		ct := mime.TypeByExtension(path.Ext(e.Name()))
		if ct == "" {
			ct = "text/plain; charset=utf-8"
		}
		out[e.Name()] = dashAsset{body: body, contentType: ct}
	}
	return out
}()

// dashboardCSP keeps the page to its own origin: no script, style, font or
// connection to another site, no inline script.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// addDashboardRoutes registers the page's routes with routes' add.
func (s *Server) addDashboardRoutes(add func(method, pattern string, h handlerFunc) *route) {
	add(fasthttp.MethodGet, "/", (*Server).dashboardRedirect)
	add(fasthttp.MethodGet, pathDashboard, (*Server).dashboardPage)
	add(fasthttp.MethodGet, pathDashboardStats, (*Server).dashboardStats)
	add(fasthttp.MethodGet, prefixDashboardAsset+"{file}", (*Server).dashboardAsset)
}

// dashboardRedirect is GET /: the operator's page is the site's front page.
func (s *Server) dashboardRedirect(ctx *fasthttp.RequestCtx, _ *scratch) {
	ctx.Response.Header.Set(fasthttp.HeaderLocation, pathDashboard)
	ctx.Response.SetStatusCode(fasthttp.StatusFound)
}

// dashboardPage is GET /dashboard.
func (s *Server) dashboardPage(ctx *fasthttp.RequestCtx, sc *scratch) {
	writeAsset(ctx, dashboardAssets["index.html"])
}

// dashboardAsset is GET /dashboard/assets/{file}.
func (s *Server) dashboardAsset(ctx *fasthttp.RequestCtx, sc *scratch) {
	a, ok := dashboardAssets[string(pathParam(ctx, prefixDashboardAsset, ""))]
	if !ok {
		writeError(ctx, sc, &errNotFound)
		return
	}
	writeAsset(ctx, a)
}

func writeAsset(ctx *fasthttp.RequestCtx, a dashAsset) {
	ctx.Response.SetStatusCode(fasthttp.StatusOK)
	ctx.Response.Header.SetContentType(a.contentType)
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-cache")
	ctx.Response.Header.Set("Content-Security-Policy", dashboardCSP)
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.Response.SetBodyRaw(a.body)
}

// errDashboardSince refuses a since that is not a non-negative integer.
var errDashboardSince = validation("since", "since must be a Unix time in milliseconds, a non-negative integer.")

// dashboardStats is GET /dashboard/stats[?since=<unix ms>]: the figures of
// now (stock, queued webhooks, totals, cluster) and the recorded one-second
// samples, only those after since when it is given.
func (s *Server) dashboardStats(ctx *fasthttp.RequestCtx, sc *scratch) {
	var since int64 = -1
	if v := ctx.QueryArgs().Peek("since"); v != nil {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || n < 0 {
			writeError(ctx, sc, &errDashboardSince)
			return
		}
		since = n
	}
	out := append(sc.out[:0], '{')
	out = appendIntField(out, "now_ms", time.Now().UnixMilli())
	mode := "single"
	if s.cluster != nil {
		mode = "cluster"
		out = appendUintField(out, "node_id", s.cluster.NodeID())
	}
	out = appendStringField(out, "mode", mode)
	out = appendIntField(out, "sample_interval_ms", dashboardSampleInterval.Milliseconds())
	out = appendIntField(out, "history_samples", dashboardHistorySamples)

	// Stock: in cluster mode after a read barrier, as GET /api/products
	// reads it; when the barrier fails, this replica's counts, marked stale.
	stale := s.cluster != nil && s.cluster.ReadBarrierAll() != nil
	sc.products = sc.products[:0]
	for _, e := range s.engines() {
		sc.products = e.Products(sc.products)
	}
	slices.SortFunc(sc.products, func(a, b engine.Product) int { return cmp.Compare(a.ID, b.ID) })
	out = append(appendKey(out, "products_stale"), strconv.FormatBool(stale)...)
	out = append(appendKey(out, "products"), '[')
	for i := range sc.products {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendProduct(out, &sc.products[i])
	}
	out = append(out, ']')

	t := s.dashboardTotals()
	out = append(appendKey(out, "totals"), '{')
	out = appendIntField(out, "holds_created", t.holds)
	out = appendIntField(out, "holds_expired", t.expired)
	out = appendIntField(out, "orders_created", t.orders)
	out = appendIntField(out, "orders_paid", t.paid)
	out = appendIntField(out, "orders_cancelled", t.cancelled)
	out = appendIntField(out, "orders_timed_out", t.timedOut)
	out = appendIntField(out, "orders_pending", t.pending)
	out = appendIntField(out, "webhooks", t.webhooks)
	out = appendIntField(out, "webhooks_queued", t.webhooksQueued)
	out = appendIntField(out, "refunds_needed", t.refunds)
	out = append(out, '}')

	out = appendKey(out, "cluster")
	if s.cluster != nil {
		out = s.cluster.AppendStatus(out)
	} else {
		out = append(out, "null"...)
	}
	out = s.dash.appendSeries(appendKey(out, "series"), since)
	sc.out = append(out, '}')
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	writeJSON(ctx, fasthttp.StatusOK, sc.out)
}

// dashTotals are the engines' counters summed over every engine this node
// holds (in cluster mode every partition's, so the cluster's totals as
// applied here).
type dashTotals struct {
	holds, expired, orders, paid, cancelled, timedOut, pending int64
	webhooks, webhooksQueued, refunds                          int64
}

func (s *Server) dashboardTotals() dashTotals {
	var t dashTotals
	for _, e := range s.engines() {
		st := e.Stats()
		t.holds += st.HoldsCreated.Load()
		t.expired += st.HoldsExpired.Load()
		t.orders += st.OrdersCreated.Load()
		t.paid += st.OrdersPaid.Load()
		t.cancelled += st.OrdersCancelled.Load()
		t.timedOut += st.OrdersTimedOut.Load()
		t.pending += st.OrdersPending.Load()
		t.webhooks += st.WebhooksApplied.Load() + st.WebhooksNotApplied.Load() + st.WebhooksQueued.Load()
		t.refunds += st.RefundsNeeded.Load()
		t.webhooksQueued += e.QueuedWebhooks()
	}
	return t
}

// dashCounters are the cumulative figures at one instant; two successive
// ones make a sample's rates.
type dashCounters struct {
	at     time.Time
	totals dashTotals
	// Answers of the /api/ routes by class: 409 (sold out, a hold
	// already used...), 429 and 503 (overloaded, unavailable), other 4xx,
	// other 5xx.
	conflict, busy, client, failed float64
	latency                        [len(dashboardRoutes)]dashHistogram
	// The single node's log (flashsale_wal_*): batches, records,
	// seconds spent writing and fsyncing.
	walBatches, walRecords, walCommitSeconds float64
	hasWAL                                   bool
	// The cluster node's Raft log (flashsale_raft_*).
	raftFsyncs, raftProposals float64
	hasRaft                   bool
	// The log's fsync latency (flashsale_wal_fsync_seconds), the single
	// node's or the Raft node's: one observation per batch.
	fsync dashHistogram
}

// dashHistogram is one latency histogram's cumulative buckets, in the
// order /metrics writes them (ascending upper bounds, +Inf last).
type dashHistogram struct {
	upper  []float64
	counts []float64
}

// add appends the bucket of upper bound le ("+Inf" or a number) holding
// count observations (cumulative); a bound that does not parse is skipped.
func (h *dashHistogram) add(le []byte, count float64) {
	upper := math.Inf(1)
	if string(le) != "+Inf" {
		var err error
		if upper, err = strconv.ParseFloat(string(le), 64); err != nil {
			return
		}
	}
	h.upper = append(h.upper, upper)
	h.counts = append(h.counts, count)
}

// dashSample is one second of the history: rates per second and latency
// quantiles in milliseconds over the interval before at; NaN means not
// known (the first sample, a gap, or no request in the interval).
type dashSample struct {
	atMilli                          int64
	holds, orders, paid, webhooks    float64
	conflict, busy, client, failed   float64
	p50, p99                         [len(dashboardRoutes)]float64
	walBatchRecords, walCommitMillis float64
	fsyncs, raftProposalsPerFsync    float64 // fsyncs: the log's batches, or Raft's fsyncs, per second
	fsyncP50, fsyncP99               float64
	webhooksQueued                   float64
}

// dashRecorder is the ring of samples and the counters of the last one.
type dashRecorder struct {
	mu      sync.Mutex
	ring    [dashboardHistorySamples]dashSample
	next, n int
	prev    dashCounters
	hasPrev bool
	text    bytes.Buffer // the metric set's text, reused
}

// RecordDashboard starts the recorder of the dashboard's history: one
// sample every second until stop is called (stop waits for it to end).
// Without a running recorder the page shows the figures of now and no
// charts. Call it once per Server.
func (s *Server) RecordDashboard() (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(dashboardSampleInterval)
		defer tick.Stop()
		s.recordDashboardSample(time.Now())
		for {
			select {
			case <-quit:
				return
			case now := <-tick.C:
				s.recordDashboardSample(now)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-done
	}
}

// recordDashboardSample reads the counters, as of now, and appends a
// sample.
func (s *Server) recordDashboardSample(now time.Time) {
	d := &s.dash
	d.mu.Lock()
	defer d.mu.Unlock()
	cur := dashCounters{at: now}
	cur.totals = s.dashboardTotals()
	d.text.Reset()
	s.metrics.WritePrometheus(&d.text)
	cur.readMetricsText(d.text.Bytes())
	if d.hasPrev {
		dt := cur.at.Sub(d.prev.at)
		smp := dashSample{atMilli: cur.at.UnixMilli(), webhooksQueued: float64(cur.totals.webhooksQueued)}
		if dt > 0 && dt < dashboardGapInterval {
			smp.rates(&d.prev, &cur, dt.Seconds())
		} else {
			smp.unknown()
		}
		d.ring[d.next] = smp
		d.next = (d.next + 1) % dashboardHistorySamples
		d.n = min(d.n+1, dashboardHistorySamples)
	}
	d.prev, d.hasPrev = cur, true
}

func (smp *dashSample) unknown() {
	nan := math.NaN()
	at, queued := smp.atMilli, smp.webhooksQueued
	*smp = dashSample{atMilli: at, webhooksQueued: queued,
		holds: nan, orders: nan, paid: nan, webhooks: nan, conflict: nan, busy: nan, client: nan, failed: nan,
		walBatchRecords: nan, walCommitMillis: nan, fsyncs: nan, raftProposalsPerFsync: nan, fsyncP50: nan, fsyncP99: nan}
	for i := range smp.p50 {
		smp.p50[i], smp.p99[i] = nan, nan
	}
}

// rates fills smp from the counters of an interval of dt seconds.
func (smp *dashSample) rates(prev, cur *dashCounters, dt float64) {
	rate := func(a, b float64) float64 { return max(b-a, 0) / dt }
	p, c := &prev.totals, &cur.totals
	smp.holds = rate(float64(p.holds), float64(c.holds))
	smp.orders = rate(float64(p.orders), float64(c.orders))
	smp.paid = rate(float64(p.paid), float64(c.paid))
	smp.webhooks = rate(float64(p.webhooks), float64(c.webhooks))
	smp.conflict = rate(prev.conflict, cur.conflict)
	smp.busy = rate(prev.busy, cur.busy)
	smp.client = rate(prev.client, cur.client)
	smp.failed = rate(prev.failed, cur.failed)
	for i := range cur.latency {
		smp.p50[i] = quantileDelta(&prev.latency[i], &cur.latency[i], 0.50) * 1000
		smp.p99[i] = quantileDelta(&prev.latency[i], &cur.latency[i], 0.99) * 1000
	}
	smp.fsyncP50 = quantileDelta(&prev.fsync, &cur.fsync, 0.50) * 1000
	smp.fsyncP99 = quantileDelta(&prev.fsync, &cur.fsync, 0.99) * 1000
	nan := math.NaN()
	smp.walBatchRecords, smp.walCommitMillis, smp.fsyncs, smp.raftProposalsPerFsync = nan, nan, nan, nan
	if cur.hasWAL && prev.hasWAL {
		smp.fsyncs = rate(prev.walBatches, cur.walBatches)
		if batches := cur.walBatches - prev.walBatches; batches > 0 {
			smp.walBatchRecords = (cur.walRecords - prev.walRecords) / batches
			smp.walCommitMillis = (cur.walCommitSeconds - prev.walCommitSeconds) / batches * 1000
		}
	}
	if cur.hasRaft && prev.hasRaft {
		fsyncs := cur.raftFsyncs - prev.raftFsyncs
		smp.fsyncs = rate(prev.raftFsyncs, cur.raftFsyncs)
		if fsyncs > 0 {
			smp.raftProposalsPerFsync = (cur.raftProposals - prev.raftProposals) / fsyncs
		}
	}
}

// quantileDelta is the q-quantile, in seconds, of the observations made
// between two readings of one histogram, interpolated linearly inside its
// bucket as Prometheus' histogram_quantile does; observations above the
// last finite bound count as that bound. NaN: no observation, or the
// buckets changed.
func quantileDelta(prev, cur *dashHistogram, q float64) float64 {
	n := len(cur.counts)
	if n == 0 || len(prev.counts) != n {
		return math.NaN()
	}
	total := cur.counts[n-1] - prev.counts[n-1]
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for i := 0; i < n; i++ {
		cum := cur.counts[i] - prev.counts[i]
		if cum >= rank {
			if math.IsInf(cur.upper[i], 1) {
				return lower
			}
			if cum == below {
				return cur.upper[i]
			}
			return lower + (cur.upper[i]-lower)*(rank-below)/(cum-below)
		}
		lower, below = cur.upper[i], cum
	}
	return lower
}

// readMetricsText takes the figures the dashboard shows from the metric
// set's Prometheus text (what GET /metrics serves, less the process
// figures).
func (c *dashCounters) readMetricsText(text []byte) {
	for len(text) > 0 {
		line := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = nil
		}
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		name, labels, value, ok := parseMetricLine(line)
		if !ok {
			continue
		}
		switch string(name) {
		case "flashsale_http_requests_total":
			if !bytes.Contains(labelValue(labels, "route"), []byte(" /api/")) {
				continue
			}
			status, err := strconv.Atoi(string(labelValue(labels, "status")))
			switch {
			case err != nil:
			case status == fasthttp.StatusConflict:
				c.conflict += value
			case status == fasthttp.StatusTooManyRequests || status == fasthttp.StatusServiceUnavailable:
				c.busy += value
			case status >= 400 && status < 500:
				c.client += value
			case status >= 500:
				c.failed += value
			}
		case "flashsale_http_request_duration_seconds_bucket":
			route := labelValue(labels, "route")
			for i, r := range dashboardRoutes {
				if string(route) != r {
					continue
				}
				c.latency[i].add(labelValue(labels, "le"), value)
			}
		case "flashsale_wal_fsync_seconds_bucket":
			c.fsync.add(labelValue(labels, "le"), value)
		case "flashsale_wal_batches_total":
			c.walBatches, c.hasWAL = value, true
		case "flashsale_wal_records_total":
			c.walRecords = value
		case "flashsale_wal_commit_seconds_total":
			c.walCommitSeconds = value
		case "flashsale_raft_fsyncs_total":
			c.raftFsyncs, c.hasRaft = value, true
		case "flashsale_raft_proposals_total":
			c.raftProposals = value
		}
	}
}

// parseMetricLine splits one sample line of the Prometheus text format,
// `name{label="value",...} value [timestamp]`; label values may hold
// spaces, braces and escaped quotes.
func parseMetricLine(line []byte) (name, labels []byte, value float64, ok bool) {
	i := bytes.IndexAny(line, "{ ")
	if i <= 0 {
		return nil, nil, 0, false
	}
	name, rest := line[:i], line[i:]
	if rest[0] == '{' {
		inQuote, end := false, -1
		for j := 1; j < len(rest) && end < 0; j++ {
			switch {
			case rest[j] == '\\' && inQuote:
				j++
			case rest[j] == '"':
				inQuote = !inQuote
			case rest[j] == '}' && !inQuote:
				end = j
			}
		}
		if end < 0 {
			return nil, nil, 0, false
		}
		labels, rest = rest[1:end], rest[end+1:]
	}
	rest = bytes.TrimLeft(rest, " ")
	if j := bytes.IndexByte(rest, ' '); j >= 0 {
		rest = rest[:j]
	}
	v, err := strconv.ParseFloat(string(rest), 64)
	if err != nil {
		return nil, nil, 0, false
	}
	return name, labels, v, true
}

// labelValue is the raw (still escaped) value of label key in labels, nil
// when absent. Route names and numbers need no unescaping.
func labelValue(labels []byte, key string) []byte {
	for len(labels) > 0 {
		eq := bytes.IndexByte(labels, '=')
		if eq < 0 || eq+1 >= len(labels) || labels[eq+1] != '"' {
			return nil
		}
		k := bytes.TrimLeft(labels[:eq], ", ")
		j := eq + 2
		for j < len(labels) && labels[j] != '"' {
			if labels[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(labels) {
			return nil
		}
		if string(k) == key {
			return labels[eq+2 : j]
		}
		labels = labels[j+1:]
	}
	return nil
}

// appendSeries appends the recorded samples after sinceMilli (all of them
// when it is negative) as columns, oldest first: {"t":[unix seconds],
// "holds":[...], ...}, null where a figure is not known.
func (d *dashRecorder) appendSeries(dst []byte, sinceMilli int64) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	first := (d.next - d.n + dashboardHistorySamples) % dashboardHistorySamples
	skip := 0
	for skip < d.n && d.ring[(first+skip)%dashboardHistorySamples].atMilli <= sinceMilli {
		skip++
	}
	column := func(dst []byte, name string, v func(*dashSample) float64) []byte {
		dst = append(appendKey(dst, name), '[')
		for i := skip; i < d.n; i++ {
			if i > skip {
				dst = append(dst, ',')
			}
			dst = appendDashNumber(dst, v(&d.ring[(first+i)%dashboardHistorySamples]))
		}
		return append(dst, ']')
	}
	dst = append(dst, '{')
	dst = column(dst, "t", func(s *dashSample) float64 { return float64(s.atMilli) / 1000 })
	dst = column(dst, "holds", func(s *dashSample) float64 { return s.holds })
	dst = column(dst, "orders", func(s *dashSample) float64 { return s.orders })
	dst = column(dst, "paid", func(s *dashSample) float64 { return s.paid })
	dst = column(dst, "webhooks", func(s *dashSample) float64 { return s.webhooks })
	dst = column(dst, "webhooks_queued", func(s *dashSample) float64 { return s.webhooksQueued })
	dst = column(dst, "refused_conflict", func(s *dashSample) float64 { return s.conflict })
	dst = column(dst, "refused_busy", func(s *dashSample) float64 { return s.busy })
	dst = column(dst, "refused_client", func(s *dashSample) float64 { return s.client })
	dst = column(dst, "errors", func(s *dashSample) float64 { return s.failed })
	for i, name := range dashboardRouteNames {
		dst = column(dst, "p50_ms_"+name, func(s *dashSample) float64 { return s.p50[i] })
		dst = column(dst, "p99_ms_"+name, func(s *dashSample) float64 { return s.p99[i] })
	}
	dst = column(dst, "wal_batch_records", func(s *dashSample) float64 { return s.walBatchRecords })
	dst = column(dst, "wal_commit_ms", func(s *dashSample) float64 { return s.walCommitMillis })
	dst = column(dst, "fsyncs", func(s *dashSample) float64 { return s.fsyncs })
	dst = column(dst, "fsync_p50_ms", func(s *dashSample) float64 { return s.fsyncP50 })
	dst = column(dst, "fsync_p99_ms", func(s *dashSample) float64 { return s.fsyncP99 })
	dst = column(dst, "raft_proposals_per_fsync", func(s *dashSample) float64 { return s.raftProposalsPerFsync })
	return append(dst, '}')
}

// appendDashNumber appends v with at most 3 decimals, null for NaN.
func appendDashNumber(dst []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(dst, "null"...)
	}
	return strconv.AppendFloat(dst, math.Round(v*1000)/1000, 'f', -1, 64)
}
