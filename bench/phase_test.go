package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Every 201 is in the granted phase and every 409 insufficient_stock in the
// sold-out phase, each over its own span of the load; the table and the
// JSON name the phase of each row.
func TestHotReportsTheGrantedAndTheSoldOutPhaseApart(t *testing.T) {
	f := startFakeServer(t, map[int64]int64{1: 40}, fakeFaults{})
	cfg := fakeConfig(f, "hot")
	cfg.ProductID = 1
	cfg.JSONPath = filepath.Join(t.TempDir(), "out.json")
	var out bytes.Buffer
	res, err := Run(context.Background(), cfg, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	requireCleanRun(t, res)
	holds := res.Endpoints[0]
	if holds.Endpoint != EndpointHoldCreate.String() {
		t.Fatalf("endpoints = %+v; want holds only", res.Endpoints)
	}
	g, s := res.Hot.Phase("granted"), res.Hot.Phase("sold_out")
	if g.Requests != 40 || g.Latency.Count != 40 || g.Requests != holds.ByStatus["201"] || g.Status != 201 {
		t.Errorf("granted phase = %+v; want the 40 201s (by status: %v)", g, holds.ByStatus)
	}
	if s.Requests == 0 || s.Requests != holds.ByStatus["409"] || s.Latency.Count != s.Requests || s.Status != 409 {
		t.Errorf("sold-out phase = %+v; want every 409 (by status: %v)", s, holds.ByStatus)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if g.StartSec != 0 || !near(g.EndSec, res.Hot.LastGrantMillis/1000) || g.ElapsedSec != g.EndSec {
		t.Errorf("granted phase spans %v–%v s (%v s); want 0 to the last grant at %v ms", g.StartSec, g.EndSec, g.ElapsedSec, res.Hot.LastGrantMillis)
	}
	if !near(s.StartSec, res.Hot.SellOutMillis/1000) || s.EndSec != res.DurationSec || s.ElapsedSec <= 0 {
		t.Errorf("sold-out phase spans %v–%v s; want the first 409 at %v ms to the end of the load at %v s",
			s.StartSec, s.EndSec, res.Hot.SellOutMillis, res.DurationSec)
	}
	if want := float64(s.Requests) / s.ElapsedSec; s.RequestsPerSec != want {
		t.Errorf("sold-out rate = %v, want 409s over the phase's span = %v", s.RequestsPerSec, want)
	}
	for _, want := range []string{"granted (201)", "sold out (409)", "whole run"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks a %q row:\n%s", want, out.String())
		}
	}
	b, err := os.ReadFile(cfg.JSONPath)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Hot struct {
			Phases []struct {
				Phase    string `json:"phase"`
				Requests int64  `json:"requests"`
			} `json:"phases"`
		} `json:"hot"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if ps := got.Hot.Phases; len(ps) != 2 || ps[0].Phase != "granted" || ps[0].Requests != 40 || ps[1].Phase != "sold_out" {
		t.Errorf("JSON phases = %+v; want granted (40) then sold_out", ps)
	}
}

// grants creates a product that never sells out: every answer is a 201.
func TestGrantsMeasuresTheGrantedPhaseAlone(t *testing.T) {
	f := startFakeServer(t, map[int64]int64{1: 5}, fakeFaults{})
	cfg := fakeConfig(f, "grants")
	cfg.AdminToken = f.adminToken
	var out bytes.Buffer
	res, err := Run(context.Background(), cfg, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	requireCleanRun(t, res)
	h := res.Hot
	if h.ProductID != 2 || h.StockAtStart != grantsStock || h.SoldOut {
		t.Fatalf("grants = %+v; want a new product of %d units, not sold out", h, int64(grantsStock))
	}
	g, s := h.Phase("granted"), h.Phase("sold_out")
	if g.Requests == 0 || g.Requests != res.Requests || g.Requests != h.UnitsGranted {
		t.Errorf("granted phase = %d answers; want every one of the %d requests (%d granted)", g.Requests, res.Requests, h.UnitsGranted)
	}
	if s.Requests != 0 || s.ElapsedSec != 0 {
		t.Errorf("sold-out phase = %+v; want none", s)
	}
	if strings.Contains(out.String(), "warning") {
		t.Errorf("a product that did not sell out was warned about:\n%s", out.String())
	}
}

// A grants run whose product sells out says that it did not measure the
// 201 path alone.
func TestGrantsWarnsWhenItsProductSellsOut(t *testing.T) {
	f := startFakeServer(t, map[int64]int64{1: 5}, fakeFaults{})
	cfg := fakeConfig(f, "grants")
	cfg.ProductID = 1
	var out bytes.Buffer
	res, err := Run(context.Background(), cfg, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !res.Hot.SoldOut || !strings.Contains(out.String(), "grants: warning: the product sold out") {
		t.Errorf("sold out %v; want a warning:\n%s", res.Hot.SoldOut, out.String())
	}
}

func TestPhaseResultsSpans(t *testing.T) {
	var hists [phaseCount]*hdrhistogram.Histogram
	for p := range hists {
		hists[p] = newLatencyHistogram()
	}
	for range 30 {
		recordLatency(hists[phaseGranted], time.Millisecond)
	}
	got := phaseResults(hists, 10, 0.5, 0.4)
	if g := got[phaseGranted]; g.Phase != "granted" || g.Requests != 30 || g.ElapsedSec != 0.5 || g.RequestsPerSec != 60 {
		t.Errorf("granted = %+v; want 30 answers over 0–0.5 s, 60/s", g)
	}
	if s := got[phaseSoldOut]; s.Phase != "sold_out" || s.StartSec != 0.4 || s.EndSec != 10 || s.Requests != 0 {
		t.Errorf("sold out = %+v; want 0.4–10 s and no answers", s)
	}
	if s := phaseResults(hists, 10, 9.9, 0)[phaseSoldOut]; s.ElapsedSec != 0 || s.RequestsPerSec != 0 {
		t.Errorf("sold out without a sell-out = %+v; want an empty span", s)
	}
	setCeilingRatios(got, 120)
	if got[phaseGranted].CeilingRatio != 0.5 {
		t.Errorf("granted share of a 120/s ceiling = %v, want 0.5", got[phaseGranted].CeilingRatio)
	}
}

// --keyed sends every hold under its own Idempotency-Key: the server
// remembers one answer per granted hold, and none is a replay.
func TestKeyedGrantsSendAFreshKeyPerHold(t *testing.T) {
	f := startFakeServer(t, map[int64]int64{1: 5}, fakeFaults{})
	cfg := fakeConfig(f, "grants")
	cfg.AdminToken = f.adminToken
	cfg.KeyedHolds = true
	var out bytes.Buffer
	res, err := Run(context.Background(), cfg, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	requireCleanRun(t, res)
	f.mu.Lock()
	keys := len(f.holdKeys)
	f.mu.Unlock()
	if granted := res.Hot.HoldsGranted; granted == 0 || int64(keys) != granted {
		t.Fatalf("%d keys remembered for %d granted holds; want one fresh key per hold", keys, granted)
	}
}
