package engine

import "sync/atomic"

// batch is what one actor step hands to the journal: the encoded records,
// the commands whose answers wait for them, and the counts to publish once
// they are durable. An actor owns batchesInFlightMax batches and reuses them.
type batch struct {
	a       *actor
	buf     []byte   // the encoded records, back to back
	offsets []int    // end of each record in buf
	recs    [][]byte // views of buf, one per record
	cmds    []*command
	counts  counts
	// releaseDueNanos: the actor's releaseDueNanos after the step that
	// made this batch, published with its counts.
	releaseDueNanos int64
	onDurable       func(error) // b.durable, bound once so Submit allocates nothing
}

func (b *batch) add(r *record) {
	b.buf = appendRecord(b.buf, r)
	b.offsets = append(b.offsets, len(b.buf))
}

func (b *batch) records() [][]byte {
	b.recs = b.recs[:0]
	start := 0
	for _, end := range b.offsets {
		b.recs = append(b.recs, b.buf[start:end:end])
		start = end
	}
	return b.recs
}

// durable runs when the journal has made b durable (err == nil) or failed to.
// It publishes the counts first, so that a read issued after an answer is
// received sees that answer's effect, then releases the answers.
func (b *batch) durable(err error) {
	failCode := OK
	if err == nil {
		b.a.published.store(b.counts, b.releaseDueNanos)
	} else {
		failCode = b.a.e.journalFailed(err)
	}
	for i, c := range b.cmds {
		if err != nil {
			c.code = failCode
		}
		b.cmds[i] = nil
		c.done <- struct{}{} // c belongs to its caller from here on
	}
	b.cmds = b.cmds[:0]
	b.buf = b.buf[:0]
	b.offsets = b.offsets[:0]
	b.a.free <- b
}

// countsPub publishes an actor's counts to readers on other goroutines
// without a lock: a sequence lock whose writer is whoever acknowledges the
// actor's batches (one at a time, in order). Readers retry while a write is
// under way, so they never see a torn mix of two batches.
//
// With the counts it publishes the earliest time at which a deadline of
// that same state may give units back (releaseDue): until then, the
// published available units are the state's available units.
type countsPub struct {
	seq                              atomic.Uint64
	total, available, reserved, sold atomic.Int64
	releaseDue                       atomic.Int64 // unix nanoseconds; math.MaxInt64: no deadline
}

func (p *countsPub) store(c counts, releaseDueNanos int64) {
	p.seq.Add(1)
	p.total.Store(c.total)
	p.available.Store(c.available)
	p.reserved.Store(c.reserved)
	p.sold.Store(c.sold)
	p.releaseDue.Store(releaseDueNanos)
	p.seq.Add(1)
}

// load returns the published counts and the time up to which no deadline
// of their state releases more units.
func (p *countsPub) load() (c counts, releaseDueNanos int64) {
	for {
		s := p.seq.Load()
		if s&1 == 1 {
			continue
		}
		c = counts{total: p.total.Load(), available: p.available.Load(), reserved: p.reserved.Load(), sold: p.sold.Load()}
		releaseDueNanos = p.releaseDue.Load()
		if p.seq.Load() == s {
			return c, releaseDueNanos
		}
	}
}
