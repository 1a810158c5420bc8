// Package wal makes opaque records durable, in order, on top of
// github.com/tidwall/wal.
//
// # On-disk format
//
// Every tidwall/wal entry holds one frame: a 4-byte little-endian CRC-32C
// (Castagnoli) of the record, then the record bytes. tidwall/wal stores an
// entry as a uvarint length followed by the frame, in numbered segment files.
// Records must be non-empty (the engine's records always start with a kind
// byte); the CRC-32C of an empty record is zero, so a zero-length record would
// be indistinguishable from a run of zero bytes.
//
// # Recovery
//
// Open checks every frame of every segment before tidwall/wal sees the
// files. The first damaged entry (incomplete, too short, or failing its CRC)
// is classified:
//
//   - torn tail: no intact frame exists at any byte offset after it, in its
//     segment or any later one. That is what a crash during a write leaves
//     (a cut file, zero-filled blocks, garbage). The damage is cut away:
//     those bytes were never acknowledged under fsync=always.
//   - mid-log corruption: some intact frame follows it. Cutting there would
//     silently drop records that were acknowledged, so Open refuses with a
//     *CorruptError unless Options.TruncateCorrupt is set.
//
// Looking for intact frames at every byte offset, not only at entry
// boundaries, matters: a bit flip in an entry's length prefix desynchronises
// the parse, and an aligned parse would then see only garbage and mistake
// mid-log damage for a torn tail.
//
// The rule errs towards refusing: a power loss that persists a later page
// of the last write but not an earlier one also leaves intact frames after
// damage, and is reported as corruption although only unacknowledged
// records are affected (frames carry no batch boundaries that would tell
// the two apart). A process crash (kill -9) tears only a suffix and is
// always repaired silently.
//
// # Writing
//
// One committer goroutine owns the tidwall log. It blocks for the first
// submission, drains whatever else is queued (up to a record and a byte
// limit), writes it all with one WriteBatch (one write, one fsync), then runs
// every done callback in submission order. Batches grow by themselves while an
// fsync is in flight; there are no timers. A failed write or sync is fatal and
// sticky: nothing is acknowledged or written after it.
package wal
