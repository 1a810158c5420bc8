package bench

import (
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// errorKey identifies one kind of unsuccessful answer: the HTTP status (0 for
// a transport error, no answer at all) and the contract's error code.
type errorKey struct {
	status int
	code   string
}

// endpointShard holds one endpoint's figures within one recorder shard.
type endpointShard struct {
	requests int64
	latency  *hdrhistogram.Histogram // allocated on first use
	byStatus map[int]int64
	// byError counts non-2xx answers by status, then by error code; the
	// counters are pointers so that counting a known code allocates nothing.
	byError map[int]map[string]*int64
}

// recorderShard is the part of a recorder that a subset of workers writes
// to; its mutex is rarely contended because workers are spread over shards.
type recorderShard struct {
	mu        sync.Mutex
	endpoints [endpointCount]endpointShard
	// phases are the latencies of the answers that make up each phase of a
	// hot-family run (phase.go); allocated on first use.
	phases [phaseCount]*hdrhistogram.Histogram
	// interval* are drained into the run's timeline once a second.
	intervalLatency  *hdrhistogram.Histogram
	intervalRequests int64
	intervalFailures int64
}

// recorder collects every request's latency, status and error code. It is
// safe for concurrent use; each worker writes to the shard it was given.
type recorder struct {
	shards []*recorderShard
}

// recorderShardsMax bounds memory: each endpoint histogram is about 140 KB.
const recorderShardsMax = 16

// newRecorder returns a recorder with enough shards for workerCount workers.
func newRecorder(workerCount int) *recorder {
	n := workerCount
	if n > recorderShardsMax {
		n = recorderShardsMax
	}
	if n < 1 {
		n = 1
	}
	r := &recorder{shards: make([]*recorderShard, n)}
	for i := range r.shards {
		r.shards[i] = &recorderShard{intervalLatency: newLatencyHistogram()}
	}
	return r
}

// shard returns the shard that worker number workerID writes to.
func (r *recorder) shard(workerID int) *recorderShard {
	return r.shards[workerID%len(r.shards)]
}

// record adds one request. status 0 means the request got no answer;
// errCode is the contract's "error" field for non-2xx answers (may be empty).
// errCode is copied only the first time a given (status, code) pair is seen.
func (s *recorderShard) record(ep Endpoint, status int, errCode []byte, latency time.Duration) {
	s.mu.Lock()
	e := &s.endpoints[ep]
	e.requests++
	if e.latency == nil {
		e.latency = newLatencyHistogram()
		e.byStatus = make(map[int]int64)
		e.byError = make(map[int]map[string]*int64)
	}
	recordLatency(e.latency, latency)
	recordLatency(s.intervalLatency, latency)
	s.intervalRequests++
	e.byStatus[status]++
	if status < 200 || status >= 300 {
		if status == 0 || status >= 500 {
			s.intervalFailures++
		}
		countError(e.byError, status, errCode)
	}
	s.mu.Unlock()
}

// recordPhase adds the latency of one answer that belongs to phase p.
func (s *recorderShard) recordPhase(p phase, latency time.Duration) {
	s.mu.Lock()
	if s.phases[p] == nil {
		s.phases[p] = newLatencyHistogram()
	}
	recordLatency(s.phases[p], latency)
	s.mu.Unlock()
}

// countError adds one answer with status and errCode to byError, copying
// errCode only the first time it is seen.
func countError(byError map[int]map[string]*int64, status int, errCode []byte) {
	codes := byError[status]
	if codes == nil {
		codes = make(map[string]*int64)
		byError[status] = codes
	}
	if n := codes[string(errCode)]; n != nil {
		*n++
		return
	}
	one := int64(1)
	codes[string(errCode)] = &one
}

// intervalSnapshot is what was recorded since the last drain.
type intervalSnapshot struct {
	requests int64
	failures int64 // no answer or 5xx
	latency  LatencySummary
}

// drainInterval returns and resets the figures gathered since the last call;
// merged is scratch space (its contents are replaced), so that a drain once a
// second allocates no histogram.
func (r *recorder) drainInterval(merged *hdrhistogram.Histogram) intervalSnapshot {
	merged.Reset()
	var snap intervalSnapshot
	for _, s := range r.shards {
		s.mu.Lock()
		merged.Merge(s.intervalLatency)
		s.intervalLatency.Reset()
		snap.requests += s.intervalRequests
		snap.failures += s.intervalFailures
		s.intervalRequests, s.intervalFailures = 0, 0
		s.mu.Unlock()
	}
	snap.latency = summarize(merged)
	return snap
}

// endpointTotals is one endpoint's figures merged over all shards.
type endpointTotals struct {
	requests int64
	latency  *hdrhistogram.Histogram
	byStatus map[int]int64
	byError  map[errorKey]int64
}

// totals merges all shards. Call it after the workers have stopped.
func (r *recorder) totals() [endpointCount]endpointTotals {
	var out [endpointCount]endpointTotals
	for ep := range out {
		out[ep] = endpointTotals{
			latency:  newLatencyHistogram(),
			byStatus: make(map[int]int64),
			byError:  make(map[errorKey]int64),
		}
	}
	for _, s := range r.shards {
		s.mu.Lock()
		for ep := range s.endpoints {
			e := &s.endpoints[ep]
			if e.requests == 0 {
				continue
			}
			t := &out[ep]
			t.requests += e.requests
			t.latency.Merge(e.latency)
			for k, v := range e.byStatus {
				t.byStatus[k] += v
			}
			for status, codes := range e.byError {
				for code, n := range codes {
					t.byError[errorKey{status, code}] += *n
				}
			}
		}
		s.mu.Unlock()
	}
	return out
}

// phaseTotals merges every shard's phase histograms. Call it after the
// workers have stopped.
func (r *recorder) phaseTotals() [phaseCount]*hdrhistogram.Histogram {
	var out [phaseCount]*hdrhistogram.Histogram
	for p := range out {
		out[p] = newLatencyHistogram()
	}
	for _, s := range r.shards {
		s.mu.Lock()
		for p, h := range s.phases {
			if h != nil {
				out[p].Merge(h)
			}
		}
		s.mu.Unlock()
	}
	return out
}
