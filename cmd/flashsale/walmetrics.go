package main

import (
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wal"
)

// registerWALMetrics adds the log's committer figures to /metrics, read at
// scrape time: batches (one write and one fsync each), the records in them
// (records/batches is the mean batch size), the time spent committing, and
// the fsync latency histogram.
func registerWALMetrics(srv *transport.Server, l *wal.Log) {
	srv.AddCounter("flashsale_wal_batches_total", "Batches the log wrote since the process started, one write and one fsync each.",
		transport.Series{Value: func() float64 { return float64(l.Stats().Batches) }})
	srv.AddCounter("flashsale_wal_records_total", "Records the log wrote since the process started.",
		transport.Series{Value: func() float64 { return float64(l.Stats().Records) }})
	srv.AddCounter("flashsale_wal_commit_seconds_total", "Time the log spent committing batches (write, fsync, segment change) since the process started.",
		transport.Series{Value: func() float64 { return float64(l.Stats().CommitNanos) / 1e9 }})
	srv.AddGauge("flashsale_wal_batch_records_mean", "Mean records per batch since the process started.",
		transport.Series{Value: func() float64 {
			st := l.Stats()
			if st.Batches == 0 {
				return 0
			}
			return float64(st.Records) / float64(st.Batches)
		}})
	srv.AddGauge("flashsale_wal_last_index", "Index of the last durable record of the log.",
		transport.Series{Value: func() float64 { return float64(l.LastIndex()) }})
	srv.AddGauge("flashsale_wal_dropped_records", "Records the start-up recovery dropped as corrupt (--wal-truncate-corrupt).",
		transport.Series{Value: func() float64 { return float64(l.Dropped()) }})
	registerFsyncHistogram(srv, l.FsyncLatency)
}

// registerFsyncHistogram exports a log's fsync latency, the single node's
// or the Raft node's: one observation per batch written and fsynced.
func registerFsyncHistogram(srv *transport.Server, read func() wal.Latency) {
	srv.AddHistogram("flashsale_wal_fsync_seconds", "Time of one batch write and its fsync (the write alone under --fsync=never), one observation per batch.",
		func() transport.Histogram {
			l := read()
			return transport.Histogram{UpperBounds: l.UpperBoundsSeconds, Counts: l.Counts, Sum: l.SumSeconds}
		})
}
