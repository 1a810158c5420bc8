package wal

import "fmt"

// CorruptError reports damage in the middle of the log: an entry that fails
// its checks with intact records after it. Open refuses such a log rather
// than silently skip records that may have been acknowledged; the operator
// decides whether to cut the log there (Options.TruncateCorrupt,
// --wal-truncate-corrupt) or restore it from elsewhere.
type CorruptError struct {
	Dir     string // log directory
	Segment string // segment file name holding the damaged entry
	Index   uint64 // log index of the first damaged entry
	Offset  int64  // byte offset of that entry in the segment file
	Reason  string // what is wrong with it
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: corrupt log in %s: segment %s, index %d, byte offset %d: %s; "+
		"intact records follow, so this is not a torn write and the log is not opened. "+
		"To drop index %d and everything after it, restart with --wal-truncate-corrupt "+
		"(Options.TruncateCorrupt)",
		e.Dir, e.Segment, e.Index, e.Offset, e.Reason, e.Index)
}

// Recovery says what Open changed to make the log consistent.
type Recovery struct {
	// TornBytes were cut from the end of the log as a torn write: bytes of
	// a write that never completed, so never acknowledged under fsync. Under
	// NoSync they may have been acknowledged.
	TornBytes int64

	// Corrupt is the mid-log damage that TruncateCorrupt cut away, nil if
	// there was none.
	Corrupt *CorruptError

	// DroppedRecords counts what TruncateCorrupt cut: the damaged entry plus
	// every intact record found after it (a lower bound if the search for
	// intact records gave up, see DroppedBytes). Zero without Corrupt.
	DroppedRecords uint64

	// DroppedBytes is the number of bytes TruncateCorrupt cut.
	DroppedBytes int64
}
