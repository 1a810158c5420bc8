package wal

import "fmt"

// Defaults for the zero values of Options.
//
// DefaultSegmentBytes is small because tidwall/wal keeps the tail segment
// in one growing slice: growing it towards 64 MiB cost about 40% of the
// committer's CPU under NoSync in profiles (copying and faulting in fresh
// pages), against under 30% at 8 MiB, which also bounds memory.
const (
	DefaultSegmentBytes    = 8 << 20
	DefaultBatchRecordsMax = 8192
	DefaultBatchBytesMax   = 4 << 20
	DefaultQueueCap        = 4096
)

// Options configure a Log. Zero values mean the documented defaults.
type Options struct {
	// NoSync acknowledges a batch after write(2), without fsync
	// (--fsync=never). UNSAFE: a machine crash or power loss loses recently
	// acknowledged records, and may leave damage that Open reports as
	// mid-log corruption. A process crash alone loses nothing once write(2)
	// returned.
	NoSync bool

	// SegmentBytes is the size at which tidwall/wal starts a new segment
	// file (default DefaultSegmentBytes). tidwall/wal keeps the whole tail
	// segment in memory, so memory use is about 2*SegmentBytes.
	SegmentBytes int

	// BatchRecordsMax is the most records merged into one WriteBatch
	// (default DefaultBatchRecordsMax). A single larger submission is still
	// written, alone, as one batch.
	BatchRecordsMax int

	// BatchBytesMax is the most record bytes merged into one WriteBatch
	// (default DefaultBatchBytesMax). A single larger submission is still
	// written, alone, as one batch.
	BatchBytesMax int

	// QueueCap is the capacity of the submission queue; Submit blocks while
	// it is full, which is the backpressure (default DefaultQueueCap).
	QueueCap int

	// TruncateCorrupt is the operator's escape hatch
	// (--wal-truncate-corrupt): on mid-log corruption, Open cuts the log at
	// the damage instead of refusing to open, dropping every record from
	// the damaged one on. Log.Recovery reports what was dropped.
	TruncateCorrupt bool

	// CommitHook, for tests only, replaces the write+sync step of every
	// batch. It receives the real step, which it may call or not, and
	// returns the error the committer sees. Returning an error without
	// calling write simulates a failed write; calling write and then
	// returning an error simulates a failed fsync.
	CommitHook func(write func() error) error
}

// withDefaults fills zero values and rejects negative ones.
func (o Options) withDefaults() (Options, error) {
	if o.SegmentBytes < 0 || o.BatchRecordsMax < 0 || o.BatchBytesMax < 0 || o.QueueCap < 0 {
		return o, fmt.Errorf("wal: negative option in %+v", o)
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.BatchRecordsMax == 0 {
		o.BatchRecordsMax = DefaultBatchRecordsMax
	}
	if o.BatchBytesMax == 0 {
		o.BatchBytesMax = DefaultBatchBytesMax
	}
	if o.QueueCap == 0 {
		o.QueueCap = DefaultQueueCap
	}
	return o, nil
}
