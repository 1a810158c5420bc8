package wal

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	twal "github.com/tidwall/wal"
)

var (
	// ErrClosed is passed to done for a Submit after Close, and returned by
	// TruncateFront after Close.
	ErrClosed = errors.New("wal: log closed")
	// ErrEmptyRecord fails a submission holding a zero-length record; the
	// log stays usable. See the package doc for why records are non-empty.
	ErrEmptyRecord = errors.New("wal: empty record")
	// ErrOutOfRange is returned by TruncateFront for an index outside
	// [FirstIndex, LastIndex+1].
	ErrOutOfRange = errors.New("wal: index out of range")
	// ErrTruncateFailed wraps a TruncateFront that failed before changing
	// any file (a full disk): the log is unchanged and still usable.
	ErrTruncateFailed = errors.New("wal: truncating the log's front failed; the log is unchanged")
	// ErrStarted is returned by Replay after Start.
	ErrStarted = errors.New("wal: Replay after Start")
)

// Log is a durable, ordered sequence of records. Open it, Replay it, Start
// it, then Submit from any number of goroutines; Close it at the end. Until
// Start, only the goroutine that called Open may use it.
type Log struct {
	dir      string
	opts     Options
	tw       *twal.Log
	lock     *os.File // holds the directory's flock until Close
	recovery Recovery

	subs      chan submission
	closeMu   sync.RWMutex // Submit holds it shared while sending; Close exclusively to close subs
	closed    bool         // guarded by closeMu
	startOnce sync.Once
	started   atomic.Bool
	stopped   chan struct{} // closed when the committer returns
	closeOnce sync.Once
	closeErr  error

	firstIndex atomic.Uint64
	lastIndex  atomic.Uint64 // last durable (acknowledged) index
	stats      struct{ batches, records, commitNanos atomic.Uint64 }
	fsync      latencyHistogram // write + fsync of each batch

	// Owned by the committer goroutine; before Start, by the caller.
	batch     twal.Batch
	pending   []submission
	carry     submission // received but left for the next batch
	hasCarry  bool
	frame     []byte
	tailBytes int   // mirror of the size of tidwall/wal's tail segment
	sticky    error // the first write or sync failure; fatal
	writeFn   func() error
	replayBuf []byte

	// failed is closed when sticky is set: the owner stops the process
	// (a log that cannot write must not leave a server looking healthy).
	failed     chan struct{}
	failErr    atomic.Pointer[error]
	commitFrom atomic.Int64 // UnixNano when the write in progress began; 0 when none
}

// Failed is closed once a write or sync of the log has failed; Err then
// says why. The failure is permanent: nothing more is written or
// acknowledged.
func (l *Log) Failed() <-chan struct{} { return l.failed }

// fail makes err the log's permanent failure (the first one wins) and
// closes Failed. Committer goroutine only (or the caller before Start).
func (l *Log) fail(err error) {
	if l.sticky != nil {
		return
	}
	l.sticky = err
	l.failErr.Store(&err)
	close(l.failed)
}

// Err is the failure that closed Failed, or nil.
func (l *Log) Err() error {
	if p := l.failErr.Load(); p != nil {
		return *p
	}
	return nil
}

// CommitStalled reports whether the write (and fsync) in progress has been
// running for longer than d: a hung disk.
func (l *Log) CommitStalled(d time.Duration) bool {
	from := l.commitFrom.Load()
	return from != 0 && time.Since(time.Unix(0, from)) > d
}

// Open opens or creates the log in dir, repairing a torn tail and refusing
// mid-log corruption (see the package doc and Options.TruncateCorrupt). A
// refused log yields a *CorruptError.
func Open(dir string, opts Options) (*Log, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	l, err := open(dir, opts)
	if err != nil {
		lock.Close()
		return nil, err
	}
	l.lock = lock
	return l, nil
}

// open does Open's work once the directory is locked.
func open(dir string, opts Options) (*Log, error) {
	if err := finishTruncation(dir, opts); err != nil {
		return nil, err
	}
	rec, next, err := recoverSegments(dir, opts.TruncateCorrupt)
	if err != nil {
		return nil, err
	}
	tw, err := twal.Open(dir, tidwallOptions(opts))
	if err != nil {
		return nil, fmt.Errorf("wal: opening %s: %w", dir, err)
	}
	l := &Log{dir: dir, opts: opts, tw: tw, recovery: rec,
		subs: make(chan submission, opts.QueueCap), stopped: make(chan struct{}), failed: make(chan struct{})}
	l.writeFn = l.writeBatch
	if err := l.load(next); err != nil {
		tw.Close()
		return nil, err
	}
	return l, nil
}

// load reads the indexes and the tail size from the freshly opened tidwall
// log and makes the directory durable (tidwall/wal may have created or
// renamed files without syncing it).
func (l *Log) load(next uint64) error {
	first, err := l.tw.FirstIndex()
	if err != nil {
		return err
	}
	last, err := l.tw.LastIndex()
	if err != nil {
		return err
	}
	if next != 0 && last+1 != next {
		return fmt.Errorf("wal: internal error: checked entries end at index %d but tidwall/wal's log ends at %d", next-1, last)
	}
	l.firstIndex.Store(first)
	l.lastIndex.Store(last)
	if l.tailBytes, err = tailSegmentBytes(l.dir); err != nil {
		return err
	}
	return syncDir(l.dir)
}

// tidwallOptions maps our options to tidwall/wal's. AllowEmpty lets
// TruncateFront remove every entry (a snapshot at the last index); the
// segment cache is 1 because reads go through Replay, not tidwall/wal.
func tidwallOptions(o Options) *twal.Options {
	return &twal.Options{
		NoSync:           o.NoSync,
		SegmentSize:      o.SegmentBytes,
		LogFormat:        twal.Binary,
		SegmentCacheSize: 1,
		NoCopy:           true,
		AllowEmpty:       true,
		DirPerms:         0o750,
		FilePerms:        0o640,
	}
}

// finishTruncation lets tidwall/wal finish a TruncateFront/TruncateBack
// that a crash interrupted (its START/END files), which it does on Open
// before it looks at the tail.
func finishTruncation(dir string, opts Options) error {
	_, unfinished, err := listSegments(dir)
	if err != nil || !unfinished {
		return err
	}
	tw, err := twal.Open(dir, tidwallOptions(opts))
	switch {
	case err == nil:
		err = tw.Close()
	case errors.Is(err, twal.ErrCorrupt):
		err = nil // cleanup done; the torn tail is recoverSegments' job
	}
	if err != nil {
		return fmt.Errorf("wal: finishing an interrupted truncation in %s: %w", dir, err)
	}
	if _, unfinished, err = listSegments(dir); err == nil && unfinished {
		err = fmt.Errorf("wal: %s holds both START and END files of interrupted truncations; refusing to guess", dir)
	}
	return err
}

// tailSegmentBytes is the size of the last segment file in dir.
func tailSegmentBytes(dir string) (int, error) {
	segs, _, err := listSegments(dir)
	if err != nil || len(segs) == 0 {
		return 0, err
	}
	fi, err := os.Stat(segs[len(segs)-1].path)
	if err != nil {
		return 0, err
	}
	return int(fi.Size()), nil
}

// Replay calls fn for every record in log order from the calling
// goroutine: the i-th call (from 0) gets the record at index FirstIndex()+i.
// rec is valid only during the call. Replay stops at fn's first error and
// returns it. It must be called before Start, because it reads the segment
// files directly (tidwall/wal's reads are not safe alongside its writes).
func (l *Log) Replay(fn func(rec []byte) error) error {
	if l.started.Load() {
		return ErrStarted
	}
	segs, _, err := listSegments(l.dir)
	if err != nil {
		return err
	}
	defer func() { l.replayBuf = nil }() // one segment of memory; not needed after startup
	next, last := l.firstIndex.Load(), l.lastIndex.Load()
	for _, s := range segs {
		if s.start != next {
			return fmt.Errorf("wal: segment %s starts at index %d, expected %d: the log changed since Open", s.name, s.start, next)
		}
		if l.replayBuf, err = readFileInto(l.replayBuf, s.path); err != nil {
			return err
		}
		buf := l.replayBuf
		for off := 0; off < len(buf); next++ {
			frame, n, ok := entryAt(buf, off)
			if !ok || !frameIntact(frame) {
				return &CorruptError{Dir: l.dir, Segment: s.name, Index: next, Offset: int64(off),
					Reason: "damaged entry found by Replay: the log changed since Open"}
			}
			if err := fn(frame[frameHeaderBytes:]); err != nil {
				return err
			}
			off += n
		}
	}
	if next != last+1 {
		return fmt.Errorf("wal: replay ended before index %d but the log ends at %d: the log changed since Open", next, last)
	}
	return nil
}

// FirstIndex is the index of the first record in the log (LastIndex()+1
// when the log is empty; 1 for a new log).
func (l *Log) FirstIndex() uint64 { return l.firstIndex.Load() }

// LastIndex is the index of the last durable record (acknowledged, or
// found on disk at Open); FirstIndex()-1 when the log is empty.
func (l *Log) LastIndex() uint64 { return l.lastIndex.Load() }

// Recovery reports what Open changed to make the log consistent.
func (l *Log) Recovery() Recovery { return l.recovery }

// Dropped is the number of records Open discarded because of mid-log
// corruption under Options.TruncateCorrupt (Recovery().DroppedRecords).
func (l *Log) Dropped() uint64 { return l.recovery.DroppedRecords }

// Stats are cumulative counters of the committer, for metrics.
type Stats struct {
	Batches     uint64 // batches written (one write and one fsync each)
	Records     uint64 // records in those batches
	CommitNanos uint64 // total time spent writing and syncing them
}

// Stats returns the committer's counters so far.
func (l *Log) Stats() Stats {
	return Stats{Batches: l.stats.batches.Load(), Records: l.stats.records.Load(), CommitNanos: l.stats.commitNanos.Load()}
}
