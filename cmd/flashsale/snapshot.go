package main

import (
	"context"
	"fmt"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/wal"
	"github.com/rs/zerolog"
)

// snapshotCheckInterval is how often the snapshotter looks whether a
// snapshot is due.
const snapshotCheckInterval = time.Second

// snapshotter bounds restart time: every snapshotEvery logged records it
// pauses the engine, encodes its state, writes it as a snapshot covering the
// log up to the last record, and drops the log before the previous
// snapshot. Keeping the log back to the previous snapshot is what lets a
// start fall back to it when the newest one is damaged.
type snapshotter struct {
	eng           *engine.Engine
	wlog          *wal.Log
	dir           string
	snapshotEvery uint64
	log           zerolog.Logger

	lastIndex uint64 // log index the newest snapshot covers; 0: none
	buf       []byte
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

// take writes a snapshot of the running engine now.
func (s *snapshotter) take() error {
	start := time.Now()
	resume, err := s.eng.Pause()
	if err != nil {
		return err
	}
	index := s.wlog.LastIndex()
	s.buf = s.eng.AppendSnapshot(s.buf[:0], time.Now())
	resume()
	paused := time.Since(start)
	if index <= s.lastIndex {
		return nil // nothing new since the last one
	}
	if err := wal.SaveSnapshot(s.dir, index, s.buf); err != nil {
		return err
	}
	if s.lastIndex > 0 && s.lastIndex >= s.wlog.FirstIndex() {
		if err := s.wlog.TruncateFront(s.lastIndex); err != nil {
			return fmt.Errorf("dropping the log before record %d: %w", s.lastIndex, err)
		}
	}
	s.lastIndex = index
	s.log.Info().Uint64("index", index).Int("bytes", len(s.buf)).Dur("paused", paused).
		Dur("took", time.Since(start)).Msg("snapshot written")
	return nil
}

// run takes a snapshot whenever one is due, until ctx ends.
func (s *snapshotter) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if s.due() {
				if err := s.take(); err != nil {
					s.log.Error().Err(err).Msg("snapshot failed; the log keeps growing until one succeeds")
				}
			}
		}
	}
}
