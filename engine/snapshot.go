package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"
)

// A snapshot is the engine's whole state as of one point of the log, so that
// a restart loads it and replays only the records after that point. Its
// encoding reuses the record codec's primitives; the file around it (index,
// checksum, atomic rename) is the log's business.
//
// What a snapshot leaves out, by design: finished holds (expired or ordered)
// whose expiry is older than Config.ExpiredHoldRetention (a GET for one then
// answers 404), idempotency keys older than their retention, and queued
// webhooks past their deadline. Memory after a restart tracks live work,
// not history.

const snapshotVersion = 1

// Pause stops every actor between two batches, blocks product creation and
// webhook queueing, and waits until everything submitted so far is durable:
// while paused, the state is exactly the log's contents, and nothing new is
// submitted. Call resume to let the engine go on. Only for a started engine
// that is not stopping.
func (e *Engine) Pause() (resume func(), err error) {
	e.productsMu.Lock()
	actors := e.products.Load().ordered
	reqs := make([]*pauseRequest, len(actors))
	for i, a := range actors {
		reqs[i] = &pauseRequest{paused: make(chan struct{}), resume: make(chan struct{})}
		a.pauseReq.Store(reqs[i])
		a.wake()
	}
	for _, r := range reqs {
		<-r.paused
	}
	for i := range e.orders.shards {
		e.orders.shards[i].mu.Lock()
	}
	resume = func() {
		for i := range e.orders.shards {
			e.orders.shards[i].mu.Unlock()
		}
		for _, r := range reqs {
			close(r.resume)
		}
		e.productsMu.Unlock()
	}
	errc := make(chan error, 1)
	e.journal.Submit(nil, func(err error) { errc <- err }) // a barrier: FIFO
	if err := <-errc; err != nil {
		resume()
		return nil, err
	}
	return resume, nil
}

// pauseRequest is how Pause parks an actor: the actor closes paused and
// waits for resume.
type pauseRequest struct {
	paused chan struct{}
	resume chan struct{}
}

// AppendSnapshot appends the engine's state to dst. The engine must be
// quiescent: before Start, after Stop, or paused. now decides what has
// outlived its retention.
func (e *Engine) AppendSnapshot(dst []byte, now time.Time) []byte {
	nowNanos := now.UnixNano()
	holdCutoff := nowNanos - int64(e.cfg.ExpiredHoldRetention)
	keyCutoff := nowNanos - int64(e.cfg.IdempotencyKeyTTL)

	dst = append(dst, snapshotVersion)
	dst = binary.AppendUvarint(dst, e.lastOrderID.Load())
	actors := e.products.Load().ordered
	dst = binary.AppendUvarint(dst, uint64(len(actors)))
	for _, a := range actors {
		dst = binary.AppendUvarint(dst, a.id)
		dst = appendString(dst, a.name)
		dst = binary.AppendVarint(dst, a.priceCents)
		dst = binary.AppendVarint(dst, a.maxPerHold)
		for _, v := range [...]int64{a.counts.total, a.counts.available, a.counts.reserved, a.counts.sold} {
			dst = binary.AppendVarint(dst, v)
		}
		first, holds := a.holds.firstSeq, a.holds.items
		for len(holds) > 0 && holds[0].status != HoldActive && holds[0].expiresNanos < holdCutoff {
			holds = holds[1:]
			first++
		}
		dst = binary.AppendUvarint(dst, first)
		dst = binary.AppendUvarint(dst, uint64(len(holds)))
		for i := range holds {
			h := &holds[i]
			dst = append(dst, h.secret[:]...)
			dst = binary.AppendVarint(dst, h.qty)
			dst = binary.AppendVarint(dst, h.expiresNanos)
			dst = append(dst, byte(h.status))
			dst = binary.AppendUvarint(dst, h.orderID)
		}
		ids := make([]uint64, 0, len(a.orders))
		for id := range a.orders {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		dst = binary.AppendUvarint(dst, uint64(len(ids)))
		for _, id := range ids {
			o := a.orders[id]
			dst = binary.AppendUvarint(dst, id)
			dst = binary.AppendVarint(dst, o.qty)
			dst = binary.AppendVarint(dst, o.amountCents)
			dst = append(dst, byte(o.status))
			dst = binary.AppendUvarint(dst, o.holdSeq)
			dst = append(dst, o.secret[:]...)
			dst = binary.AppendVarint(dst, o.createdNanos)
			dst = binary.AppendVarint(dst, o.updatedNanos)
			dst = binary.AppendVarint(dst, o.deadlineNanos)
			dst = appendString(dst, o.failureReason)
		}
	}
	dst = e.appendQueued(dst, nowNanos)
	dst = appendKeys(dst, e.holdKeys, keyCutoff)
	dst = appendKeys(dst, e.webhookKeys, keyCutoff)
	return dst
}

func (e *Engine) appendQueued(dst []byte, nowNanos int64) []byte {
	type item struct {
		id uint64
		ev queuedWebhook
	}
	var items []item
	for i := range e.orders.shards {
		for id, evs := range e.orders.shards[i].queued {
			for _, ev := range evs {
				if ev.deadlineNanos > nowNanos {
					items = append(items, item{id, ev})
				}
			}
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].id < items[j].id })
	dst = binary.AppendUvarint(dst, uint64(len(items)))
	for _, it := range items {
		dst = binary.AppendUvarint(dst, it.id)
		dst = appendBool(dst, it.ev.success)
		dst = appendString(dst, it.ev.reason)
		dst = binary.AppendVarint(dst, it.ev.deadlineNanos)
	}
	return dst
}

// appendKeys writes the answered entries of t (those an applied record
// remembered); entries still waiting for their first answer have no record
// and are left out, as a crash would leave them.
func appendKeys(dst []byte, t *keyTable, cutoffNanos int64) []byte {
	var entries []*keyEntry
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for _, ke := range s.m {
			if ke.atNanos != 0 && ke.atNanos >= cutoffNanos {
				entries = append(entries, ke)
			}
		}
		s.mu.Unlock()
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].key < entries[j].key })
	dst = binary.AppendUvarint(dst, uint64(len(entries)))
	for _, ke := range entries {
		dst = appendString(dst, ke.key)
		dst = binary.LittleEndian.AppendUint64(dst, ke.fp)
		dst = binary.AppendVarint(dst, ke.atNanos)
		h := ke.hold
		dst = append(dst, byte(h.Code))
		dst = binary.AppendVarint(dst, h.Available)
		dst = binary.AppendUvarint(dst, h.Hold.Token.ProductID)
		dst = binary.AppendUvarint(dst, h.Hold.Token.Seq)
		dst = append(dst, h.Hold.Token.Secret[:]...)
		dst = binary.AppendVarint(dst, h.Hold.Qty)
		dst = binary.AppendVarint(dst, timeNanos(h.Hold.ExpiresAt))
		dst = append(dst, byte(h.Hold.Status))
		dst = binary.AppendUvarint(dst, h.Hold.OrderID)
		p := ke.payment
		dst = append(dst, byte(p.Code))
		dst = binary.AppendUvarint(dst, p.OrderID)
		dst = appendBool(dst, p.Queued)
		dst = append(dst, byte(p.Status))
		dst = appendBool(dst, p.Applied)
	}
	return dst
}

func timeNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func nanosTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

var errSnapshotInvalid = errors.New("engine: snapshot invalid")

// LoadSnapshot restores the state AppendSnapshot wrote, into a new engine
// before any Replay. Records after the snapshot's log position are then
// replayed as usual. A snapshot that does not decode, or whose counts break
// the invariant, is refused whole.
func (e *Engine) LoadSnapshot(src []byte) (err error) {
	if e.started || e.stats.RecordsReplayed.Load() > 0 || len(e.products.Load().ordered) > 0 {
		return errors.New("engine: LoadSnapshot into an engine that has state")
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", errSnapshotInvalid, p)
		}
	}()
	d := decoder{src: src}
	if v := d.byte(); v != snapshotVersion {
		return fmt.Errorf("%w: version %d", errSnapshotInvalid, v)
	}
	e.lastOrderID.Store(d.uvarint())
	for n := d.count(); n > 0 && d.err == nil; n-- {
		e.loadProduct(&d)
	}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		id := d.uvarint()
		ev := queuedWebhook{success: d.bool(), reason: d.string(), deadlineNanos: d.varint()}
		s := e.orders.shard(id)
		e.orders.queueLocked(s, id, ev)
	}
	loadKeys(&d, e.holdKeys)
	loadKeys(&d, e.webhookKeys)
	if d.err != nil {
		return fmt.Errorf("%w: %v", errSnapshotInvalid, d.err)
	}
	if d.off != len(src) {
		return fmt.Errorf("%w: %d trailing bytes", errSnapshotInvalid, len(src)-d.off)
	}
	return nil
}

func (e *Engine) loadProduct(d *decoder) {
	r := record{kind: recProductCreated, product: d.uvarint(), name: d.string(), priceCents: d.varint(), maxPerHold: d.varint()}
	if d.err != nil {
		return
	}
	if e.actor(r.product) != nil {
		panic(fmt.Sprintf("product %d twice", r.product))
	}
	a := e.addProduct(&r)
	a.counts = counts{total: d.varint(), available: d.varint(), reserved: d.varint(), sold: d.varint()}
	a.counts.check(a.id)
	a.holds = holdLog{firstSeq: d.uvarint()}
	if a.holds.firstSeq == 0 {
		panic("hold sequence numbers start at 1")
	}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		h := holdState{}
		d.secret(&h.secret)
		h.qty, h.expiresNanos, h.status, h.orderID = d.varint(), d.varint(), HoldStatus(d.byte()), d.uvarint()
		if d.err != nil {
			return
		}
		if h.status < HoldActive || h.status > HoldExpired || h.qty < 1 {
			panic(fmt.Sprintf("product %d: hold %d is %+v", a.id, a.holds.nextSeq(), h))
		}
		seq := a.holds.nextSeq()
		a.holds.add(seq, h)
		if h.status == HoldActive {
			a.deadlines.push(deadline{atNanos: h.expiresNanos, holdSeq: seq})
		}
	}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		id := d.uvarint()
		o := orderState{qty: d.varint(), amountCents: d.varint(), status: OrderStatus(d.byte()), holdSeq: d.uvarint()}
		d.secret(&o.secret)
		o.createdNanos, o.updatedNanos, o.deadlineNanos = d.varint(), d.varint(), d.varint()
		// A timestamp the state was made with: the clock never goes below it.
		e.raiseClockFloor(o.updatedNanos)
		o.failureReason = d.string()
		if d.err != nil {
			return
		}
		if o.status < OrderPending || o.status > OrderCancelled || o.qty < 1 {
			panic(fmt.Sprintf("product %d: order %d is %+v", a.id, id, o))
		}
		a.orders[id] = o
		e.orders.publish(id, a.id)
		if o.status == OrderPending && o.deadlineNanos != 0 {
			a.deadlines.push(deadline{atNanos: o.deadlineNanos, orderID: id})
		}
	}
	if d.err == nil {
		a.checkHeldUnits()
	}
	a.published.store(a.counts)
}

// checkHeldUnits asserts that the counts agree with the holds and orders:
// reserved units are those of active holds and pending orders, sold units
// those of paid orders.
func (a *actor) checkHeldUnits() {
	var reserved, sold int64
	for _, h := range a.holds.items {
		if h.status == HoldActive {
			reserved += h.qty
		}
	}
	for _, o := range a.orders {
		switch o.status {
		case OrderPending:
			reserved += o.qty
		case OrderPaid:
			sold += o.qty
		}
	}
	if reserved != a.counts.reserved || sold != a.counts.sold {
		panic(fmt.Sprintf("product %d: counts %+v disagree with holds and orders (reserved %d, sold %d)",
			a.id, a.counts, reserved, sold))
	}
}

func loadKeys(d *decoder, t *keyTable) {
	for n := d.count(); n > 0 && d.err == nil; n-- {
		key := d.string()
		var fp uint64
		if d.err == nil && len(d.src)-d.off >= 8 {
			fp = binary.LittleEndian.Uint64(d.src[d.off:])
			d.off += 8
		} else {
			d.err = errRecordShort
			return
		}
		at := d.varint()
		var h HoldReply
		h.Code = Code(d.byte())
		h.Available = d.varint()
		h.Hold.Token.ProductID = d.uvarint()
		h.Hold.Token.Seq = d.uvarint()
		d.secret(&h.Hold.Token.Secret)
		h.Hold.ProductID = h.Hold.Token.ProductID
		h.Hold.Qty = d.varint()
		h.Hold.ExpiresAt = nanosTime(d.varint())
		h.Hold.Status = HoldStatus(d.byte())
		h.Hold.OrderID = d.uvarint()
		var p PaymentReply
		p.Code = Code(d.byte())
		p.OrderID = d.uvarint()
		p.Queued = d.bool()
		p.Status = OrderStatus(d.byte())
		p.Applied = d.bool()
		if d.err != nil {
			return
		}
		t.remember(key, fp, at, &h, &p)
	}
}

// count reads a collection length, refusing one larger than the bytes left
// (every element takes at least one byte), so that a damaged snapshot cannot
// make the loader loop or allocate without bound.
func (d *decoder) count() uint64 {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.src)-d.off) {
		d.err = errRecordShort
		return 0
	}
	return n
}
