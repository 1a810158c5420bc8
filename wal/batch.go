package wal

import "fmt"

// frameBatch frames every record of l.pending into l.batch with indexes from
// next on. A submission holding an empty record is left out whole and gets
// ErrEmptyRecord. It returns the index after the last one used, and what
// tidwall/wal's tail segment will look like after the batch: its size, and
// whether tidwall/wal will start a new segment while writing it. The
// mirror follows tidwall/wal v1.2.1's writeBatch: a new segment before the
// batch if the tail is over the limit, and after any entry that brings it
// to the limit.
func (l *Log) frameBatch(next uint64) (index uint64, tailBytes int, cycled bool) {
	l.batch.Clear()
	index, tailBytes = next, l.tailBytes
	if tailBytes > l.opts.SegmentBytes {
		tailBytes, cycled = 0, true
	}
	for i := range l.pending {
		s := &l.pending[i]
		for _, r := range s.records {
			if len(r) == 0 {
				s.err = ErrEmptyRecord
				break
			}
		}
		if s.err != nil {
			continue
		}
		for _, r := range s.records {
			l.frame = appendFrame(l.frame[:0], r)
			l.batch.Write(index, l.frame) // copies the frame
			index++
			if tailBytes += entryBytes(len(l.frame)); tailBytes >= l.opts.SegmentBytes {
				tailBytes, cycled = 0, true
			}
		}
	}
	return index, tailBytes, cycled
}

// writeBatch is the real write+sync step: one write(2) and, unless NoSync,
// one fsync, both done by tidwall/wal's WriteBatch.
func (l *Log) writeBatch() error {
	return l.tw.WriteBatch(&l.batch)
}

// segmentCycled runs after a batch during which tidwall/wal started a new
// segment file: tidwall/wal does not fsync the directory, so a new file's
// name would not survive a crash; and it caches the old segment's contents,
// which only Replay reads, and Replay reads files directly.
func (l *Log) segmentCycled() error {
	_ = l.tw.ClearCache() // fails only on a closed or corrupt log, which the next write reports
	if l.opts.NoSync {
		return nil
	}
	return syncDir(l.dir)
}

// checkLastIndex asserts that tidwall/wal agrees on where the log ends.
func (l *Log) checkLastIndex(want uint64) {
	got, err := l.tw.LastIndex()
	if err != nil || got != want {
		panic(fmt.Sprintf("wal: internal error: tidwall/wal last index %d (err %v), expected %d", got, err, want))
	}
}

// truncateFront runs TruncateFront on the goroutine that owns the log. A
// failure after tidwall/wal started changing files is fatal, like a write
// failure: the files may be half-way. tidwall/wal marks its log corrupt
// (every later call answers ErrCorrupt) exactly then; a failure that left
// it sound (writing the new first segment's copy: ENOSPC) changed nothing
// and is returned as ErrTruncateFailed, the log going on.
func (l *Log) truncateFront(index uint64) error {
	if l.sticky != nil {
		return l.sticky
	}
	first, last := l.firstIndex.Load(), l.lastIndex.Load()
	if index < first || index > last+1 {
		return fmt.Errorf("%w: TruncateFront(%d) on a log holding [%d, %d]", ErrOutOfRange, index, first, last)
	}
	if index == first {
		return nil
	}
	err := l.tw.TruncateFront(index)
	if err != nil {
		if _, sound := l.tw.FirstIndex(); sound == nil {
			return fmt.Errorf("%w: TruncateFront(%d): %w", ErrTruncateFailed, index, err)
		}
	}
	if err == nil {
		err = syncDir(l.dir) // tidwall/wal renames and removes without syncing the directory
	}
	if err == nil {
		l.tailBytes, err = tailSegmentBytes(l.dir)
	}
	if err != nil {
		l.fail(fmt.Errorf("wal: TruncateFront(%d) failed; the log accepts no more writes: %w", index, err))
		return l.sticky
	}
	l.firstIndex.Store(index)
	return nil
}
