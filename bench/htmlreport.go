package bench

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"os"

	"github.com/flashsale/flashsale/transport/dashboard"
)

// WriteHTML writes res as one self-contained HTML page (flashbench --html):
// requests per second and the p50/p99/max latency of every second of the
// load, a percentile plot of each endpoint's latency (from the run's HDR
// histograms), the hot workload's phases and the audit's verdict. The
// charting library (uPlot, the one the server's dashboard uses) is inlined,
// so the file opens anywhere, offline, with nothing fetched.
func WriteHTML(w io.Writer, res *Result) error {
	js, err := dashboard.Files.ReadFile("uPlot.iife.min.js")
	if err != nil {
		return err
	}
	css, err := dashboard.Files.ReadFile("uPlot.min.css")
	if err != nil {
		return err
	}
	data, err := json.Marshal(htmlData(res))
	if err != nil {
		return err
	}
	return htmlReport.Execute(w, map[string]any{
		"Res":    res,
		"Title":  fmt.Sprintf("flashbench %s against %s", res.Workload, res.Target),
		"UPlot":  template.JS(js),
		"CSS":    template.CSS(css),
		"Data":   template.JS(data),
		"Errors": res.Errors,
	})
}

// writeHTMLFile writes WriteHTML's page to path.
func writeHTMLFile(path string, res *Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := WriteHTML(f, res); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// htmlPercentiles are the points of the percentile plot: the percentiles a
// LatencySummary keeps, at x = 1/(1-p) (so 99.9 % sits at 1000).
var htmlPercentiles = []struct {
	name string
	x    float64
	of   func(LatencySummary) int64
}{
	{"p50", 2, func(l LatencySummary) int64 { return l.P50Micros }},
	{"p90", 10, func(l LatencySummary) int64 { return l.P90Micros }},
	{"p99", 100, func(l LatencySummary) int64 { return l.P99Micros }},
	{"p99.9", 1000, func(l LatencySummary) int64 { return l.P999Micros }},
}

// htmlData is what the page's script draws.
func htmlData(res *Result) map[string]any {
	var t, rps, p50, p99, maxMs []float64
	for _, iv := range res.Timeline {
		t = append(t, iv.StartSec+iv.DurationSec)
		rps = append(rps, iv.RequestsPerSec)
		p50 = append(p50, float64(iv.P50Micros)/1e3)
		p99 = append(p99, float64(iv.P99Micros)/1e3)
		maxMs = append(maxMs, float64(iv.MaxMicros)/1e3)
	}
	var xs []float64
	for _, p := range htmlPercentiles {
		xs = append(xs, p.x)
	}
	type series struct {
		Name string    `json:"name"`
		Ms   []float64 `json:"ms"`
	}
	var endpoints []series
	for _, e := range res.Endpoints {
		s := series{Name: e.Endpoint}
		for _, p := range htmlPercentiles {
			s.Ms = append(s.Ms, float64(p.of(e.Latency))/1e3)
		}
		endpoints = append(endpoints, s)
	}
	return map[string]any{
		"timeline":    map[string]any{"t": t, "rps": rps, "p50": p50, "p99": p99, "max": maxMs},
		"percentiles": map[string]any{"x": xs, "endpoints": endpoints},
	}
}

var htmlReport = template.Must(template.New("report").Funcs(template.FuncMap{
	"ms": func(us int64) string { return fmt.Sprintf("%.2f ms", float64(us)/1e3) },
	"f0": func(v float64) string { return fmt.Sprintf("%.0f", v) },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>{{.CSS}}
body{font:14px system-ui,sans-serif;margin:24px;color:#1d2330}
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}.ok{color:#2f9e44}.bad{color:#c92a2a}
.chart{margin:8px 0 24px}</style></head><body>
<h1>{{.Title}}</h1>
<p>{{.Res.Mode}} loop, {{.Res.Conns}} connections, {{printf "%.1f" .Res.DurationSec}} s, seed {{.Res.Seed}}:
{{.Res.Requests}} requests ({{f0 .Res.RequestsPerSec}}/s), p50 {{ms .Res.Latency.P50Micros}}, p99 {{ms .Res.Latency.P99Micros}}, max {{ms .Res.Latency.MaxMicros}}.</p>
<h2>Audit: {{if .Res.Audit.OK}}<span class="ok">OK</span>{{else}}<span class="bad">FAILED ({{.Res.Audit.ViolationCount}} violations)</span>{{end}}</h2>
{{if .Res.Audit.Violations}}<ul>{{range .Res.Audit.Violations}}<li>{{.}}</li>{{end}}</ul>{{end}}
<h2>Endpoints</h2>
<table><tr><th>endpoint</th><th>requests</th><th>req/s</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>
{{range .Res.Endpoints}}<tr><td>{{.Endpoint}}</td><td>{{.Requests}}</td><td>{{f0 .RequestsPerSec}}</td><td>{{ms .Latency.P50Micros}}</td><td>{{ms .Latency.P90Micros}}</td><td>{{ms .Latency.P99Micros}}</td><td>{{ms .Latency.P999Micros}}</td><td>{{ms .Latency.MaxMicros}}</td></tr>
{{end}}</table>
{{with .Res.Hot}}{{if .Phases}}<h2>Hot: phases</h2>
<table><tr><th>phase</th><th>requests</th><th>req/s</th><th>p50</th><th>p99</th><th>max</th></tr>
{{range .Phases}}<tr><td>{{.Phase}}</td><td>{{.Requests}}</td><td>{{f0 .RequestsPerSec}}</td><td>{{ms .Latency.P50Micros}}</td><td>{{ms .Latency.P99Micros}}</td><td>{{ms .Latency.MaxMicros}}</td></tr>
{{end}}</table>{{end}}{{end}}
{{if .Errors}}<h2>Unsuccessful answers</h2><table><tr><th>endpoint</th><th>status</th><th>code</th><th>count</th></tr>
{{range .Errors}}<tr><td>{{.Endpoint}}</td><td>{{.Status}}</td><td>{{.Code}}</td><td>{{.Count}}</td></tr>{{end}}</table>{{end}}
<h2>Second by second</h2><div id="rps" class="chart"></div><div id="lat" class="chart"></div>
<h2>Latency by percentile (per endpoint, from the HDR histograms)</h2><div id="pct" class="chart"></div>
<script>{{.UPlot}}</script>
<script>
const data = {{.Data}};
const tl = data.timeline, w = Math.min(1000, document.body.clientWidth - 20);
const colors = ["#1c7ed6", "#f59f00", "#c92a2a", "#2f9e44", "#7048e8", "#0ca678"];
new uPlot({title: "requests per second", width: w, height: 260, scales: {x: {time: false}},
  axes: [{label: "seconds into the load"}, {label: "req/s"}],
  series: [{}, {label: "req/s", stroke: colors[0]}]}, [tl.t, tl.rps], document.getElementById("rps"));
new uPlot({title: "latency per second (ms)", width: w, height: 260, scales: {x: {time: false}},
  axes: [{label: "seconds into the load"}, {label: "ms"}],
  series: [{}, {label: "p50", stroke: colors[0]}, {label: "p99", stroke: colors[1]}, {label: "max", stroke: colors[2]}]},
  [tl.t, tl.p50, tl.p99, tl.max], document.getElementById("lat"));
const pc = data.percentiles;
new uPlot({title: "latency (ms) at percentile", width: w, height: 300,
  scales: {x: {time: false, distr: 3}, y: {distr: 3}},
  axes: [{label: "percentile", values: (u, vals) => vals.map(v => (100 - 100 / v).toPrecision(4) + "%")}, {label: "ms"}],
  series: [{}].concat(pc.endpoints.map((e, i) => ({label: e.name, stroke: colors[i % colors.length], points: {show: true}})))},
  [pc.x].concat(pc.endpoints.map(e => e.ms)), document.getElementById("pct"));
</script></body></html>
`))
