package wal

import (
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// benchCommit runs b.N one-record commits from writers concurrent writers,
// each waiting for its record to be acknowledged before it submits the
// next, like a request handler does. It reports records/s, the batches the
// committer formed, and the latency of single commits from Submit to the
// acknowledgement (p50, p99, max), so that a stall shows even when the
// throughput looks fine. Latencies go into a slice sized before the timer
// starts: the loop allocates nothing for them. It also reports the CPU the
// whole process used (user + system, from getrusage: the committer, the
// writers, the runtime) per batch and per record: the wall time of a batch
// is mostly the disk, its CPU is what a busy server pays.
func benchCommit(b *testing.B, writers int, opts Options) {
	l := mustOpen(b, b.TempDir(), opts)
	l.Start()
	latencies := make([]time.Duration, b.N)
	var ops atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs := [][]byte{testRecord(w)}
			ack := make(chan error, 1)
			done := func(err error) { ack <- err }
			<-start
			for i := ops.Add(1); i <= int64(b.N); i = ops.Add(1) {
				t0 := time.Now()
				l.Submit(recs, done)
				if err := <-ack; err != nil {
					b.Error(err)
					return
				}
				latencies[i-1] = time.Since(t0)
			}
		}()
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	t0 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)
	cpu := processCPU(b) - cpu0
	b.StopTimer()
	st := l.Stats()
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
	if st.Batches > 0 {
		b.ReportMetric(float64(st.Records)/float64(st.Batches), "records/batch")
		b.ReportMetric(float64(st.CommitNanos)/float64(st.Batches)/1e3, "µs/batch")
		b.ReportMetric(float64(cpu)/float64(st.Batches)/1e3, "cpu-µs/batch")
	}
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/record")
	reportLatencies(b, latencies)
}

// processCPU is the user and system CPU time the process has used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportLatencies reports the p50, p99 and maximum of latencies, in
// microseconds; it reorders latencies.
func reportLatencies(b *testing.B, latencies []time.Duration) {
	if len(latencies) == 0 {
		return
	}
	slices.Sort(latencies)
	at := func(q float64) float64 {
		return float64(latencies[int(q*float64(len(latencies)-1))]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
	b.ReportMetric(at(1), "max-µs")
}

// replayFixtureRecords is the size of the log BenchmarkReplay reads.
const replayFixtureRecords = 1_000_000

var replayFixture struct {
	once sync.Once
	dir  string
	err  error
}

// replayFixtureDir writes, once per test binary, a log of 1,000,000
// 64-byte records; TestMain removes it.
func replayFixtureDir(b *testing.B) string {
	replayFixture.once.Do(func() {
		dir, err := os.MkdirTemp("", "wal-replay-bench-")
		if err != nil {
			replayFixture.err = err
			return
		}
		replayFixture.dir = dir
		l, err := Open(dir, Options{NoSync: true})
		if err != nil {
			replayFixture.err = err
			return
		}
		l.Start()
		const perSubmit = 1000
		recs := testRecords(0, perSubmit)
		for i := 0; i < replayFixtureRecords/perSubmit && replayFixture.err == nil; i++ {
			replayFixture.err = submitWait(l, recs)
		}
		if err := l.Close(); replayFixture.err == nil {
			replayFixture.err = err
		}
	})
	if replayFixture.err != nil {
		b.Fatal(replayFixture.err)
	}
	return replayFixture.dir
}

// TestMain removes the replay fixture and fails the run if any goroutine
// outlives the tests: a closed Log must leave no committer behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if replayFixture.dir != "" {
			os.RemoveAll(replayFixture.dir)
		}
		os.Exit(code)
	}))
}

func BenchmarkReplay(b *testing.B) {
	dir := replayFixtureDir(b)
	l := mustOpen(b, dir, Options{})
	defer l.Close()
	b.ReportAllocs()
	b.ResetTimer()
	var total int
	for i := 0; i < b.N; i++ {
		n := 0
		if err := l.Replay(func(rec []byte) error {
			n++
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		if n != replayFixtureRecords {
			b.Fatalf("replayed %d records, want %d", n, replayFixtureRecords)
		}
		total += n
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkOpen measures Open of the same log, which checks every frame
// before tidwall/wal opens it.
func BenchmarkOpen(b *testing.B) {
	dir := replayFixtureDir(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l := mustOpen(b, dir, Options{})
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*replayFixtureRecords/b.Elapsed().Seconds(), "records/s")
}
