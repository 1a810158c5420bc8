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
