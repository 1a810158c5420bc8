package wal

import "testing"

// The committer with 1, 64 and 1,024 writers, each with one record in flight
// (benchCommit): records/s and the p50/p99/max latency of one commit. With
// fsync on, records/s is bounded by writers ÷ the time of one commit, so
// one writer measures the latency floor (one write and one fsync), 64 the
// load of a server's connection pool, and 1,024 how far batching scales.
//
//	go test -run '^$' -bench 'Commit' -benchtime 2000x ./wal/
func BenchmarkCommit1Writer(b *testing.B)     { benchCommit(b, 1, Options{}) }
func BenchmarkCommit(b *testing.B)            { benchCommit(b, 64, Options{}) }
func BenchmarkCommit1024Writers(b *testing.B) { benchCommit(b, 1024, Options{}) }

// BenchmarkCommitNoSync is BenchmarkCommit without fsync: the committer's
// own cost.
func BenchmarkCommitNoSync(b *testing.B) { benchCommit(b, 64, Options{NoSync: true}) }

// commitBatchRecords is the batch BenchmarkCommitBatch commits: the size
// of the batches the server's committer formed at 256 connections.
const commitBatchRecords = 78

// BenchmarkCommitBatch times the committer's step alone, without writers
// or the queue: one op frames commitBatchRecords one-record submissions of
// 64 bytes, writes them with one WriteBatch (and one fsync) and calls
// their done functions, on the calling goroutine. ns/op is one batch;
// cpu-µs/batch (getrusage) is the CPU it costs, which under fsync is far
// less than its wall time.
func BenchmarkCommitBatch(b *testing.B) {
	b.Run("nosync", func(b *testing.B) { benchCommitBatch(b, Options{NoSync: true}) })
	b.Run("fsync", func(b *testing.B) { benchCommitBatch(b, Options{}) })
}

func benchCommitBatch(b *testing.B, opts Options) {
	l := mustOpen(b, b.TempDir(), opts) // not started: this goroutine owns it
	var failed error
	done := func(err error) {
		if err != nil && failed == nil {
			failed = err
		}
	}
	subs := make([]submission, commitBatchRecords)
	for i := range subs {
		subs[i] = submission{records: [][]byte{testRecord(i)}, done: done}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	for range b.N {
		l.pending = append(l.pending[:0], subs...)
		l.commit()
	}
	cpu := processCPU(b) - cpu0
	b.StopTimer()
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	if failed != nil {
		b.Fatal(failed)
	}
	b.ReportMetric(float64(cpu)/float64(b.N)/1e3, "cpu-µs/batch")
	b.ReportMetric(float64(b.N*commitBatchRecords)/b.Elapsed().Seconds(), "records/s")
}
