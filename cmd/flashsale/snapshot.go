package main

import (
	"context"
	"errors"
	"fmt"

	"sync/atomic"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wal"
	"github.com/rs/zerolog"
)

// snapshotCheckInterval is how often the snapshotter looks whether a
// snapshot is due.
const snapshotCheckInterval = time.Second

// After a failed snapshot (its write, or dropping the log's front after it)
// the snapshotter waits snapshotRetryFirst before the next attempt, twice
// as long after each further failure in a row, at most snapshotRetryMax: a
// full or broken disk is not hammered, nor is the engine paused every
// second for a snapshot that cannot be written. A success resets the wait.
const (
	snapshotRetryFirst = 2 * time.Second
	snapshotRetryMax   = 5 * time.Minute
)

// snapshotter bounds restart time: every snapshotEvery logged records it
// pauses the engine while it takes a view of its state (copy-on-write,
// engine.SnapshotView), encodes the view once the engine runs
// again, writes it as a snapshot covering the log up to the last record,
// and drops the log before the previous snapshot. Keeping the log back to
// the previous snapshot is what lets a start fall back to it when the
// newest one is damaged.
//
// A failed snapshot write leaves the log alone (it keeps growing, and the
// previous snapshots stay valid); a failed drop of the log's front that
// changed nothing (wal.ErrTruncateFailed) keeps the records until the next
// snapshot drops them. Both are logged with their cause, counted in
// /metrics (flashsale_snapshot_write_failures_total,
// flashsale_snapshot_truncate_failures_total) and retried after a backoff.
// A truncation that failed half-way is the log's own permanent failure,
// which stops the server (watchLog).
type snapshotter struct {
	eng           *engine.Engine
	wlog          *wal.Log
	dir           string
	snapshotEvery uint64
	log           zerolog.Logger

	lastIndex uint64 // log index the newest snapshot covers; 0: none
	buf       []byte
	stats     snapshotStats
}

// snapshotStats are the snapshotter's figures in /metrics, read at scrape
// time from any goroutine.
type snapshotStats struct {
	written          atomic.Uint64 // snapshots saved
	writeFailures    atomic.Uint64 // snapshots not saved
	truncateFailures atomic.Uint64 // saved, but the log's front not dropped
	failuresInARow   atomic.Uint64 // failures since the last success
	retryNanos       atomic.Int64  // wait before the next attempt after a failure; 0: none
	pauseNanos       atomic.Int64  // how long the last snapshot paused the engine
	lastIndex        atomic.Uint64 // log index the newest snapshot covers
}

// errSnapshotTruncate marks a take whose snapshot was saved but whose drop
// of the log's front failed.
var errSnapshotTruncate = errors.New("the snapshot was written, but dropping the log before it failed; the log keeps those records until a later snapshot drops them")

// registerMetrics adds the snapshotter's figures to srv's /metrics.
func (s *snapshotter) registerMetrics(srv *transport.Server) {
	st := &s.stats
	u := func(v *atomic.Uint64) func() float64 { return func() float64 { return float64(v.Load()) } }
	d := func(v *atomic.Int64) func() float64 {
		return func() float64 { return time.Duration(v.Load()).Seconds() }
	}
	srv.AddCounter("flashsale_snapshots_total", "Snapshots written since the process started.", transport.Series{Value: u(&st.written)})
	srv.AddCounter("flashsale_snapshot_write_failures_total", "Snapshots that could not be written (the server goes on; retried after a backoff).", transport.Series{Value: u(&st.writeFailures)})
	srv.AddCounter("flashsale_snapshot_truncate_failures_total", "Snapshots written whose drop of the log before them failed (the log keeps those records).", transport.Series{Value: u(&st.truncateFailures)})
	srv.AddGauge("flashsale_snapshot_failures_in_a_row", "Snapshot failures since the last success.", transport.Series{Value: u(&st.failuresInARow)})
	srv.AddGauge("flashsale_snapshot_retry_seconds", "Wait before the next snapshot attempt after a failure; 0: none pending.", transport.Series{Value: d(&st.retryNanos)})
	srv.AddGauge("flashsale_snapshot_pause_seconds", "How long the last snapshot paused the engine (the copy-on-write view; encoding runs after).", transport.Series{Value: d(&st.pauseNanos)})
	srv.AddGauge("flashsale_snapshot_last_index", "Log index the newest snapshot covers.", transport.Series{Value: u(&st.lastIndex)})
}

// load restores the newest valid snapshot into eng and replays the log
// records after it. It refuses a log whose front was dropped past what the
// loaded snapshot covers: that state cannot be rebuilt.
func (s *snapshotter) load() (replayed int, err error) {
	aside, err := wal.SetAsideSnapshotsAfter(s.dir, s.wlog.LastIndex())
	if err != nil {
		return 0, err
	}
	for _, f := range aside {
		s.log.Warn().Str("file", f).Uint64("log_last_index", s.wlog.LastIndex()).
			Msg("set aside a snapshot that covers records the log no longer has; starting from an older state")
	}
	index, state, ok, skipped, err := wal.LoadSnapshot(s.dir)
	if err != nil {
		return 0, err
	}
	for _, e := range skipped {
		s.log.Warn().Err(e).Msg("skipped a damaged snapshot; falling back to an older one")
	}
	if ok {
		if err := s.eng.LoadSnapshot(state); err != nil {
			return 0, fmt.Errorf("snapshot %d: %w", index, err)
		}
		s.lastIndex = index
		s.stats.lastIndex.Store(index)
		s.log.Info().Uint64("index", index).Int("bytes", len(state)).Msg("snapshot loaded")
	}
	first, last := s.wlog.FirstIndex(), s.wlog.LastIndex()
	if s.lastIndex > last {
		panic("a snapshot ahead of the log was not set aside") // new records would reuse its indexes
	}
	if last > 0 && first > s.lastIndex+1 {
		return 0, fmt.Errorf("the log starts at record %d but no valid snapshot covers the records before it (newest usable snapshot: %d)", first, s.lastIndex)
	}
	next := first
	err = s.wlog.Replay(func(rec []byte) error {
		index := next
		next++
		if index <= s.lastIndex {
			return nil
		}
		replayed++
		return s.eng.Replay(rec)
	})
	return replayed, err
}

// due reports whether enough records were logged since the newest snapshot.
func (s *snapshotter) due() bool {
	return s.snapshotEvery > 0 && s.wlog.LastIndex() >= s.lastIndex+s.snapshotEvery
}

// take writes a snapshot of the running engine now. A failed write is
// returned as it is; a failed drop of the log's front wraps
// errSnapshotTruncate (the snapshot itself counts as written).
func (s *snapshotter) take() error {
	start := time.Now()
	resume, err := s.eng.Pause()
	if err != nil {
		return err
	}
	index := s.wlog.LastIndex()
	view := s.eng.CaptureSnapshot(time.Now())
	resume()
	paused := time.Since(start)
	s.stats.pauseNanos.Store(int64(paused))
	if index <= s.lastIndex {
		return nil // nothing new since the last one
	}
	s.buf = view.AppendTo(s.buf[:0]) // the engine runs on meanwhile
	if err := wal.SaveSnapshot(s.dir, index, s.buf); err != nil {
		s.stats.writeFailures.Add(1)
		return fmt.Errorf("writing the snapshot of records up to %d: %w", index, err)
	}
	prev := s.lastIndex
	s.lastIndex = index
	s.stats.written.Add(1)
	s.stats.lastIndex.Store(index)
	s.log.Info().Uint64("index", index).Int("bytes", len(s.buf)).Dur("paused", paused).
		Dur("took", time.Since(start)).Msg("snapshot written")
	if prev > 0 && prev >= s.wlog.FirstIndex() {
		if err := s.wlog.TruncateFront(prev); err != nil {
			s.stats.truncateFailures.Add(1)
			return fmt.Errorf("%w: dropping the log before record %d: %w", errSnapshotTruncate, prev, err)
		}
	}
	return nil
}

// run takes a snapshot whenever one is due, until ctx ends; after a
// failure it waits (snapshotRetryFirst, doubling up to snapshotRetryMax)
// before the next attempt.
func (s *snapshotter) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var retryAt time.Time
	var wait time.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if !s.due() || now.Before(retryAt) {
				continue
			}
			err := s.take()
			if err == nil {
				if n := s.stats.failuresInARow.Swap(0); n > 0 {
					s.log.Info().Uint64("failures", n).Msg("snapshots work again")
				}
				wait, retryAt = 0, time.Time{}
				s.stats.retryNanos.Store(0)
				continue
			}
			wait = nextSnapshotRetry(wait)
			retryAt = time.Now().Add(wait)
			s.stats.retryNanos.Store(int64(wait))
			n := s.stats.failuresInARow.Add(1)
			msg := "snapshot failed; the log keeps growing until one succeeds"
			if errors.Is(err, errSnapshotTruncate) {
				msg = "dropping the log's front after a snapshot failed; the log keeps growing until a later snapshot drops it"
			}
			s.log.Error().Err(err).Uint64("failures_in_a_row", n).Dur("retry_in", wait).Msg(msg)
		}
	}
}

// nextSnapshotRetry is the wait after a failure that followed a wait of
// prev (0: the first failure).
func nextSnapshotRetry(prev time.Duration) time.Duration {
	if prev == 0 {
		return snapshotRetryFirst
	}
	return min(2*prev, snapshotRetryMax)
}
