package main

import (
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wal"
)

// registerWALMetrics adds the log's committer figures to /metrics, read at
// scrape time: batches (one write and one fsync each), the records in them
// (records/batches is the mean batch size), and the time spent committing.
func registerWALMetrics(srv *transport.Server, l *wal.Log) {
	set := srv.Metrics()
	set.NewGauge(`flashsale_wal_batches_total`, func() float64 { return float64(l.Stats().Batches) })
	set.NewGauge(`flashsale_wal_records_total`, func() float64 { return float64(l.Stats().Records) })
	set.NewGauge(`flashsale_wal_commit_seconds_total`, func() float64 { return float64(l.Stats().CommitNanos) / 1e9 })
	set.NewGauge(`flashsale_wal_batch_records_mean`, func() float64 {
		st := l.Stats()
		if st.Batches == 0 {
			return 0
		}
		return float64(st.Records) / float64(st.Batches)
	})
	set.NewGauge(`flashsale_wal_last_index`, func() float64 { return float64(l.LastIndex()) })
	set.NewGauge(`flashsale_wal_dropped_records`, func() float64 { return float64(l.Dropped()) })
}
