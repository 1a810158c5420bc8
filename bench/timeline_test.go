package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Each request is in the interval in which it completed, every interval
// follows the last, and a stall shows in the interval it happened in.
func TestTimelineShowsWhenAStallHappened(t *testing.T) {
	rec := newRecorder(4)
	// show runs on the sampling goroutine between two drains, so what it
	// records lands in the next interval, whatever the scheduler does.
	shown := 0
	threeShown := make(chan struct{})
	show := func(IntervalResult) {
		shown++
		switch shown {
		case 1:
			for i := range 50 {
				rec.shard(i).record(EndpointHoldCreate, 201, nil, time.Millisecond)
			}
		case 2:
			rec.shard(0).record(EndpointHoldCreate, 201, nil, 400*time.Millisecond)
		case 3:
			close(threeShown)
		}
	}
	stop := startTimeline(rec, 20*time.Millisecond, show)
	select {
	case <-threeShown:
	case <-time.After(10 * time.Second):
		stop()
		t.Fatal("three intervals were not shown within 10 s")
	}
	for i := range 10 {
		rec.shard(i).record(EndpointHoldCreate, 503, []byte("overloaded"), time.Millisecond)
	}
	timeline := stop()
	if len(timeline) < 3 {
		t.Fatalf("timeline = %+v; want at least the three intervals shown", timeline)
	}
	if first := timeline[0]; first.Requests != 0 {
		t.Errorf("first interval = %+v; want nothing recorded", first)
	}
	fast, stall := timeline[1], timeline[2]
	if fast.Requests != 50 || fast.MaxMicros != 1000 || fast.P99Micros != 1000 {
		t.Errorf("interval of the fast requests = %+v; want 50 of 1 ms", fast)
	}
	if stall.Requests != 1 || !within(stall.MaxMicros, 400_000) || !within(stall.P99Micros, 400_000) {
		t.Errorf("interval of the stall = %+v; want its one request of 400 ms", stall)
	}
	var total, failures int64
	for i, iv := range timeline {
		total += iv.Requests
		failures += iv.Failures
		if i > 0 {
			prev := timeline[i-1]
			if d := iv.StartSec - (prev.StartSec + prev.DurationSec); d > 1e-9 || d < -1e-9 {
				t.Errorf("interval %d starts at %v s, not where interval %d ended (%v s)", i, iv.StartSec, i-1, prev.StartSec+prev.DurationSec)
			}
		}
	}
	if total != 61 || failures != 10 {
		t.Errorf("timeline has %d requests, %d failures; want all 61 and the 10 recorded just before stop", total, failures)
	}
	if w := slowestInterval(timeline); timeline[w] != stall {
		t.Errorf("slowest interval = %+v, want the stall's %+v", timeline[w], stall)
	}
}

// within reports whether got is want within the histogram's resolution.
func within(got, want int64) bool { return got >= want-want/500 && got <= want+want/500 }

// A run's timeline covers every load request, is in the JSON result, and
// --verbose prints a line per interval.
func TestRunKeepsATimelineAndVerbosePrintsIt(t *testing.T) {
	f := startFakeServer(t, map[int64]int64{1: 30}, fakeFaults{})
	cfg := fakeConfig(f, "hot")
	cfg.ProductID, cfg.Verbose, cfg.timelineInterval = 1, true, 100*time.Millisecond
	var out bytes.Buffer
	res, err := Run(t.Context(), cfg, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(res.Timeline) == 0 {
		t.Fatal("no timeline")
	}
	var total int64
	for _, iv := range res.Timeline {
		total += iv.Requests
		if iv.Requests > 0 && (iv.P99Micros <= 0 || iv.MaxMicros < iv.P99Micros || iv.RequestsPerSec <= 0) {
			t.Errorf("interval %+v: want p99, max and a rate", iv)
		}
	}
	if total != res.Requests {
		t.Errorf("timeline counts %d requests, the run %d", total, res.Requests)
	}
	if lines := strings.Count(out.String(), " req/s  p50 "); lines != len(res.Timeline) {
		t.Errorf("--verbose printed %d interval lines, want one per interval (%d):\n%s", lines, len(res.Timeline), out.String())
	}
	if !strings.Contains(out.String(), "timeline: ") || strings.Contains(out.String(), "\r") {
		t.Errorf("want a timeline summary and no redrawn progress line:\n%s", out.String())
	}
}
