package bench

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// In open loop, a server stall must show in the latency of every arrival
// that was due during it, not only in the one request that was in flight:
// latency counts from the intended send time (no coordinated omission).
func TestOpenLoopLatencyIncludesTheWaitBehindAStall(t *testing.T) {
	const (
		stallDelay     = 300 * time.Millisecond
		stallAtRequest = 40 // about 200 ms into the run at 200/s
	)
	var served atomic.Int64
	addr := startConstantServer(t, func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) != "/api/products" && served.Add(1) == stallAtRequest {
			time.Sleep(stallDelay)
		}
		ceilingHandler(ctx)
	})
	cfg := Config{URL: "http://" + addr, Workload: "browse", Duration: time.Second, Conns: 1, RatePerSec: 200, Seed: 5}
	res := runBench(t, cfg)
	// About 60 arrivals fall due during the stall and wait behind it: well
	// over 10% of the 200 must be slower than 100 ms.
	if p90 := res.Latency.P90Micros; p90 < 100_000 {
		t.Errorf("p90 = %s: arrivals due during a %v stall were timed from their actual send", formatMicros(p90), stallDelay)
	}
	if max := res.Latency.MaxMicros; max < 250_000 {
		t.Errorf("max = %s, want at least most of the %v stall", formatMicros(max), stallDelay)
	}
}
