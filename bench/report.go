package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"text/tabwriter"
)

// fillLoadFigures copies the recorder's totals into res.
func fillLoadFigures(res *Result, rec *recorder) {
	totals := rec.totals()
	all := newLatencyHistogram()
	res.Endpoints = res.Endpoints[:0]
	for ep, t := range totals {
		if t.requests == 0 {
			continue
		}
		all.Merge(t.latency)
		res.Requests += t.requests
		byStatus := make(map[string]int64, len(t.byStatus))
		for s, n := range t.byStatus {
			byStatus[strconv.Itoa(s)] = n
		}
		res.Endpoints = append(res.Endpoints, EndpointResult{
			Endpoint:       Endpoint(ep).String(),
			Requests:       t.requests,
			RequestsPerSec: perSec(t.requests, res.DurationSec),
			Latency:        summarize(t.latency),
			ByStatus:       byStatus,
		})
		for k, n := range t.byError {
			res.Errors = append(res.Errors, ErrorCount{Endpoint: Endpoint(ep).String(), Status: k.status, Code: k.code, Count: n})
		}
	}
	sort.Slice(res.Errors, func(i, j int) bool {
		a, b := res.Errors[i], res.Errors[j]
		if a.Endpoint != b.Endpoint {
			return a.Endpoint < b.Endpoint
		}
		if a.Status != b.Status {
			return a.Status < b.Status
		}
		return a.Code < b.Code
	})
	res.Latency = summarize(all)
	res.RequestsPerSec = perSec(res.Requests, res.DurationSec)
	res.OpsPerSec = perSec(res.Ops, res.DurationSec)
}

func perSec(n int64, sec float64) float64 {
	if sec <= 0 {
		return 0
	}
	return float64(n) / sec
}

// WriteJSON writes res (a *Result or *SuiteResult), indented, to path.
func WriteJSON(path string, res any) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// wholeRun names the phase of a row that covers every request of the run.
const wholeRun = "whole run"

// WriteTable prints res for people. Every row of its table names its phase:
// the whole run, or for hot and grants the granted and the sold-out phase.
func WriteTable(out io.Writer, res *Result) {
	mode := "closed loop"
	if res.Mode == "open" {
		mode = fmt.Sprintf("open loop at %.0f ops/s", res.RatePerSec)
	}
	fmt.Fprintf(out, "flashbench %s against %s: %s, %d conns, %.1f s, seed %d\n",
		res.Workload, res.Target, mode, res.Conns, res.DurationSec, res.Seed)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-28s\t%s\trequests\treq/s\t× ceiling\tp50\tp90\tp99\tp99.9\tmax\t\n", "endpoint", "phase")
	row := func(name, phase string, n int64, rate, ratio float64, l LatencySummary) {
		share := "—"
		if ratio > 0 {
			share = fmt.Sprintf("%.2f", ratio)
		}
		fmt.Fprintf(tw, "%-28s\t%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, phase, n, rate, share,
			formatMicros(l.P50Micros), formatMicros(l.P90Micros), formatMicros(l.P99Micros),
			formatMicros(l.P999Micros), formatMicros(l.MaxMicros))
	}
	for _, e := range res.Endpoints {
		row(e.Endpoint, wholeRun, e.Requests, e.RequestsPerSec, 0, e.Latency)
	}
	allRatio := 0.0
	if res.Ceiling != nil {
		allRatio = res.Ceiling.Ratio
	}
	row("all", wholeRun, res.Requests, res.RequestsPerSec, allRatio, res.Latency)
	if res.Hot != nil {
		for _, p := range res.Hot.Phases {
			row(EndpointHoldCreate.String(), phaseLabel(p.Phase), p.Requests, p.RequestsPerSec, p.CeilingRatio, p.Latency)
		}
	}
	tw.Flush()
	fmt.Fprintf(out, "ops: %d (%.0f/s)", res.Ops, res.OpsPerSec)
	if res.Mode == "open" {
		fmt.Fprintf(out, ", missed arrivals: %d", res.MissedArrivals)
	}
	fmt.Fprintln(out)
	if res.MissedArrivals > 0 {
		due := res.Ops + res.MissedArrivals
		fmt.Fprintf(out, "warning: the server fell behind the rate: %d of %d due ops (%.1f%%) never started, and the latencies above cover only those that did\n",
			res.MissedArrivals, due, 100*float64(res.MissedArrivals)/float64(due))
	}
	if len(res.Errors) > 0 {
		fmt.Fprintln(out, "non-2xx answers:")
		for _, e := range res.Errors {
			status := strconv.Itoa(e.Status)
			if e.Status == 0 {
				status = "no answer"
			}
			fmt.Fprintf(out, "  %-28s %-9s %-26s %d\n", e.Endpoint, status, e.Code, e.Count)
		}
	}
	writeWorkloadFigures(out, res)
	writeTimeline(out, res.Timeline)
	writeAudit(out, res.Audit)
}

func writeWorkloadFigures(out io.Writer, res *Result) {
	if h := res.Hot; h != nil {
		fmt.Fprintf(out, "%s: product %d, stock %d, granted %d (equals stock: %v), unknown %d, expired %d\n",
			res.Workload, h.ProductID, h.StockAtStart, h.UnitsGranted, h.GrantedEqualsStock, h.UnitsUnknown, h.UnitsExpired)
		if h.SoldOut {
			fmt.Fprintf(out, "%s: sold out after %.1f ms (%d granted by then; last grant at %.1f ms); after sell-out %d 409s, %.0f/s, %.1f%% of answers\n",
				res.Workload, h.SellOutMillis, h.GrantsAtSellOut, h.LastGrantMillis, h.RejectsAfterSold, h.RejectsPerSecAfter, 100*h.RejectShareAfter)
		} else {
			fmt.Fprintf(out, "%s: did not sell out\n", res.Workload)
		}
		for _, p := range h.Phases {
			if p.Requests > 0 {
				fmt.Fprintf(out, "%s: %s phase: %d answers %d from %.3f s to %.3f s of the load, %.0f/s\n",
					res.Workload, phaseLabel(p.Phase), p.Requests, p.Status, p.StartSec, p.EndSec, p.RequestsPerSec)
			}
		}
		if res.Workload == "grants" && h.SoldOut {
			fmt.Fprintln(out, "grants: warning: the product sold out, so the 201 path was not measured alone; use a product with more stock")
		}
	}
	if c := res.Checkout; c != nil {
		fmt.Fprintf(out, "checkout: %d flows, holds %d granted / %d rejected, %d orders (%d re-posted), payments %d success / %d failure\n",
			c.Flows, c.HoldsGranted, c.HoldsRejected, c.OrdersCreated, c.OrderRetries, c.PaymentsSuccess, c.PaymentsFailure)
		fmt.Fprintf(out, "checkout: duplicates %d sequential / %d concurrent, %d contrary events, %d early webhooks (%d resolved)\n",
			c.DuplicatesSequential, c.DuplicatesConcurrent, c.ContraryEvents, c.EarlyWebhooks, c.EarlyWebhooksResolved)
		fmt.Fprintf(out, "checkout: %d purchases after the load to create the orders of queued early webhooks; %d left queued\n",
			c.DrainFlows, c.EarlyWebhooksLeftQueued)
		if c.OrdersFinalAtCreation > 0 {
			fmt.Fprintf(out, "checkout: warning: %d orders were created already final by webhooks queued before this run\n", c.OrdersFinalAtCreation)
		}
		fmt.Fprintf(out, "checkout: verified %d orders: %d paid, %d cancelled, %d pending; lost payments %d, doubled payments %d\n",
			c.OrdersVerified, c.OrdersPaid, c.OrdersCancelled, c.OrdersPending, c.LostPayments, c.DoubledPayments)
	}
	if c := res.Ceiling; c != nil {
		if c.Ratio > 0 {
			fmt.Fprintf(out, "ceiling: %.0f req/s (p99 %s); this run reached %.1f%% of it\n",
				c.RequestsPerSec, formatMicros(c.Latency.P99Micros), 100*c.Ratio)
		} else {
			fmt.Fprintf(out, "ceiling: %.0f req/s (p99 %s) against a constant-response fasthttp server\n",
				c.RequestsPerSec, formatMicros(c.Latency.P99Micros))
		}
	}
}

// writeTimeline names the interval with the slowest request, so that a
// stall shows when it happened; the JSON output has every interval.
func writeTimeline(out io.Writer, timeline []IntervalResult) {
	worst := slowestInterval(timeline)
	if worst < 0 {
		return
	}
	iv := timeline[worst]
	fmt.Fprintf(out, "timeline: %d intervals; the slowest request finished in %.1f–%.1f s: max %s, p99 %s, %.0f req/s (--verbose prints every interval, --json has them)\n",
		len(timeline), iv.StartSec, iv.StartSec+iv.DurationSec, formatMicros(iv.MaxMicros), formatMicros(iv.P99Micros), iv.RequestsPerSec)
}

func writeAudit(out io.Writer, a AuditResult) {
	if a.OK {
		fmt.Fprintf(out, "audit: OK (%d products checked)\n", len(a.Products))
		return
	}
	fmt.Fprintf(out, "audit: FAILED, %d violations\n", a.ViolationCount)
	for _, v := range a.Violations {
		fmt.Fprintln(out, "  -", v)
	}
	if int64(len(a.Violations)) < a.ViolationCount {
		fmt.Fprintf(out, "  … and %d more\n", a.ViolationCount-int64(len(a.Violations)))
	}
}
