package wal

import (
	"fmt"
	"runtime"
	"time"
)

// submissionKind tells the committer what a submission asks for.
type submissionKind uint8

const (
	kindRecords       submissionKind = iota // append records
	kindTruncateFront                       // drop entries before index
)

// submission travels by value through the queue, so Submit allocates
// nothing.
type submission struct {
	records [][]byte
	done    func(error)
	kind    submissionKind
	index   uint64 // kindTruncateFront: the new first index
	err     error  // set by the committer: this submission's own failure
}

// Start starts the committer goroutine, which owns the tidwall log for
// writing from now on. Calling it again does nothing.
func (l *Log) Start() {
	l.startOnce.Do(func() {
		l.started.Store(true)
		go l.run()
	})
}

// Submit queues records as one submission and returns; it blocks only
// while the queue is full. done is called exactly once: with nil after
// every record is written and fsynced (written, under NoSync), or with the
// error that prevented it. Submissions are written and their done functions
// called strictly in the order Submit was called, so an answer released in
// done never overtakes a record it depends on. A submission without records
// is legal: its done runs once everything submitted before it is durable.
//
// The caller must not modify records until done runs. done runs on the
// committer goroutine and delays every later acknowledgement, so it must be
// quick and must never block, call Submit, TruncateFront or Close (the
// queue may be full, which would deadlock the committer on itself). After
// Close, done(ErrClosed) is called at once from the calling goroutine; after
// a write or sync failure, every done gets that failure and nothing more is
// written.
func (l *Log) Submit(records [][]byte, done func(error)) {
	if done == nil {
		panic("wal: Submit with a nil done function")
	}
	l.submit(submission{records: records, done: done})
}

func (l *Log) submit(s submission) {
	l.closeMu.RLock()
	if l.closed {
		l.closeMu.RUnlock()
		s.done(ErrClosed)
		return
	}
	l.subs <- s
	l.closeMu.RUnlock()
}

// TruncateFront removes every record before index, which becomes
// FirstIndex (index LastIndex()+1 empties the log). It runs on the
// committer goroutine, after everything submitted before it, and returns
// once the change is durable. It is meant for snapshots: write the state
// as of index N durably, then TruncateFront(N+1). Before Start it runs
// directly, on the calling goroutine.
//
// A failure before any file changed (tidwall/wal first writes the rest of
// the new first segment to a new file: on a full disk that is where it
// fails) is an ErrTruncateFailed: the log keeps every record and goes on
// accepting writes; the caller may try again later. A failure after files
// started changing is the log's permanent failure, like a failed write
// (Failed is closed).
func (l *Log) TruncateFront(index uint64) error {
	if !l.started.Load() {
		l.closeMu.RLock()
		closed := l.closed
		l.closeMu.RUnlock()
		if closed {
			return ErrClosed
		}
		return l.truncateFront(index)
	}
	result := make(chan error, 1)
	l.submit(submission{kind: kindTruncateFront, index: index, done: func(err error) { result <- err }})
	return <-result
}

// Close stops accepting submissions, commits everything submitted before
// it, stops the committer and closes the files. It returns the sticky
// write failure if there was one. Calling it again returns the same result.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		// Start first: a Submit blocked on a full queue before Start
		// holds closeMu until the committer makes room.
		l.Start()
		l.closeMu.Lock()
		l.closed = true
		close(l.subs)
		l.closeMu.Unlock()
		<-l.stopped
		err := l.tw.Close()
		if cerr := l.lock.Close(); err == nil {
			err = cerr
		}
		if l.sticky != nil {
			err = l.sticky
		}
		l.closeErr = err
	})
	return l.closeErr
}

// gatherYieldsMax is the most times gather yields the processor while
// filling one batch.
const gatherYieldsMax = 4

// run is the committer goroutine.
func (l *Log) run() {
	defer close(l.stopped)
	for l.gather() {
		l.commit()
		clear(l.pending) // drop references to callers' records and callbacks
	}
}

// gather blocks for one submission, then adds whatever else is already
// queued, within the batch limits, to l.pending. A truncation always
// travels alone. It returns false once the queue is closed and empty.
//
// When the queue runs dry it yields the processor (runtime.Gosched, not a
// timer) and looks again, for as long as the previous look found more:
// writers woken by the last batch's done calls are typically a few
// microseconds from resubmitting, and waiting for them here fills the next
// fsync instead of splitting them across two. With nobody else runnable
// the yield returns at once, so a lone writer pays nothing. The yields are
// capped at gatherYieldsMax so that CPU-bound goroutines cannot hold the
// fsync back for long.
func (l *Log) gather() bool {
	first := l.carry
	if l.hasCarry {
		l.carry, l.hasCarry = submission{}, false
	} else {
		var ok bool
		if first, ok = <-l.subs; !ok {
			return false
		}
	}
	l.pending = append(l.pending[:0], first)
	if first.kind != kindRecords {
		return true
	}
	records, bytes := len(first.records), payloadBytes(first.records)
	seen, yields := 0, 0
	for records < l.opts.BatchRecordsMax && bytes < l.opts.BatchBytesMax {
		select {
		case s, ok := <-l.subs:
			if !ok {
				return true
			}
			n, b := len(s.records), payloadBytes(s.records)
			if s.kind != kindRecords || records+n > l.opts.BatchRecordsMax || bytes+b > l.opts.BatchBytesMax {
				l.carry, l.hasCarry = s, true
				return true
			}
			l.pending = append(l.pending, s)
			records, bytes = records+n, bytes+b
		default:
			if len(l.pending) == seen || yields == gatherYieldsMax {
				return true
			}
			seen, yields = len(l.pending), yields+1
			runtime.Gosched()
		}
	}
	return true
}

func payloadBytes(records [][]byte) int {
	n := 0
	for _, r := range records {
		n += len(r)
	}
	return n
}

// commit writes l.pending with one WriteBatch (one write, one fsync) and
// then calls every done in order.
func (l *Log) commit() {
	p := l.pending
	if p[0].kind == kindTruncateFront {
		if len(p) != 1 {
			panic("wal: truncation batched with other submissions")
		}
		p[0].done(l.truncateFront(p[0].index))
		return
	}
	if l.sticky != nil {
		for i := range p {
			p[i].done(l.sticky)
		}
		return
	}
	next := l.lastIndex.Load() + 1
	index, tail, cycled := l.frameBatch(next)
	if index > next {
		start := time.Now()
		l.commitFrom.Store(start.UnixNano())
		var err error
		if l.opts.CommitHook != nil {
			err = l.opts.CommitHook(l.writeFn)
		} else {
			err = l.writeFn()
		}
		l.fsync.observe(time.Since(start))
		l.commitFrom.Store(0)
		if err == nil && cycled {
			err = l.segmentCycled()
		}
		if err != nil {
			l.fail(fmt.Errorf("wal: writing records %d..%d failed; the log accepts no more writes: %w", next, index-1, err))
			for i := range p {
				p[i].done(l.sticky)
			}
			return
		}
		l.checkLastIndex(index - 1)
		l.tailBytes = tail
		l.lastIndex.Store(index - 1)
		l.stats.batches.Add(1)
		l.stats.records.Add(index - next)
		l.stats.commitNanos.Add(uint64(time.Since(start)))
	}
	for i := range p {
		p[i].done(p[i].err)
	}
}
