package engine

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
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

// snapshotVersion 2 encodes idempotency keys by generation, compactly
// (appendKeys); version 1 (full answer structs per key) still loads.
const snapshotVersion = 2

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
	dst = appendKeys(dst, e.holdKeys, nowNanos)
	dst = appendKeys(dst, e.webhookKeys, nowNanos)
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

// appendKeys writes the answers of t that lookups at nowNanos see (those
// an applied record remembered), by generation: each generation as the
// span it covers and its answers sorted by key, so that one state always
// encodes to the same bytes. Claims without an answer have no record and
// are left out, as a crash would leave them.
func appendKeys(dst []byte, t *keyTable, nowNanos int64) []byte {
	refs := t.collect(nowNanos)
	slices.SortFunc(refs, func(a, b keyRef) int {
		if a.gen != b.gen {
			return cmp.Compare(a.gen, b.gen)
		}
		return bytes.Compare(a.key(), b.key())
	})
	groups := 0
	for i := range refs {
		if i == 0 || refs[i].gen != refs[i-1].gen {
			groups++
		}
	}
	dst = binary.AppendUvarint(dst, uint64(groups))
	for i := 0; i < len(refs); {
		gen := refs[i].gen
		j := i
		for j < len(refs) && refs[j].gen == gen {
			j++
		}
		start := gen * t.spanNanos
		dst = binary.AppendVarint(dst, start)
		dst = binary.AppendVarint(dst, start+t.spanNanos)
		dst = binary.AppendUvarint(dst, uint64(j-i))
		for ; i < j; i++ {
			key, a := decodeKeyRecord(refs[i].record(), start)
			dst = binary.AppendUvarint(dst, uint64(len(key)))
			dst = append(dst, key...)
			dst = append(dst, byte(a.kind))
			switch a.kind {
			case keyHoldCreated:
				dst = binary.AppendUvarint(dst, a.productID)
				dst = binary.AppendUvarint(dst, a.seq)
				dst = append(dst, a.secret[:]...)
				dst = binary.AppendVarint(dst, a.qty)
				dst = binary.AppendVarint(dst, a.expiresNanos)
			case keyHoldRefused:
				dst = binary.LittleEndian.AppendUint64(dst, a.fp)
				dst = binary.AppendVarint(dst, a.available)
			case keyPayment:
				dst = binary.LittleEndian.AppendUint64(dst, a.fp)
				dst = binary.AppendUvarint(dst, a.orderID)
				dst = appendBool(dst, a.queued)
				dst = append(dst, byte(a.status))
				dst = appendBool(dst, a.applied)
			}
		}
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
	version := d.byte()
	if version != 1 && version != snapshotVersion {
		return fmt.Errorf("%w: version %d", errSnapshotInvalid, version)
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
	if version == 1 {
		loadKeysV1(&d, e.holdKeys, false)
		loadKeysV1(&d, e.webhookKeys, true)
	} else {
		loadKeys(&d, e.holdKeys, false)
		loadKeys(&d, e.webhookKeys, true)
	}
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
		if o.status == OrderPending {
			e.stats.OrdersPending.Add(1)
			if o.deadlineNanos != 0 {
				a.deadlines.push(deadline{atNanos: o.deadlineNanos, orderID: id})
			}
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

// loadKeys restores what appendKeys wrote. Each answer is remembered as of
// the end of its generation's span, so that it lands in the same
// generation (or, if the TTL changed, is kept at least as long).
func loadKeys(d *decoder, t *keyTable, webhooks bool) {
	for groups := d.count(); groups > 0 && d.err == nil; groups-- {
		start, end := d.varint(), d.varint()
		if d.err == nil && end <= start {
			panic(fmt.Sprintf("key generation [%d, %d)", start, end))
		}
		for n := d.count(); n > 0 && d.err == nil; n-- {
			key := d.string()
			var a keyAnswer
			switch kind := keyAnswerKind(d.byte()); {
			case kind == keyHoldCreated && !webhooks:
				productID, seq := d.uvarint(), d.uvarint()
				var secret [16]byte
				d.secret(&secret)
				qty, expires := d.varint(), d.varint()
				a = holdCreatedAnswer(productID, seq, secret, qty, expires)
			case kind == keyHoldRefused && !webhooks:
				fp := d.uint64LE()
				a = holdRefusedAnswer(fp, d.varint())
			case kind == keyPayment && webhooks:
				fp := d.uint64LE()
				r := PaymentReply{Code: OK, OrderID: d.uvarint(), Queued: d.bool(), Status: OrderStatus(d.byte()), Applied: d.bool()}
				a = paymentAnswer(fp, &r)
			default:
				if d.err == nil {
					panic(fmt.Sprintf("key answer of kind %d in the %s namespace", kind, map[bool]string{false: "hold", true: "webhook"}[webhooks]))
				}
			}
			if d.err != nil {
				return
			}
			t.remember(key, end-1, a)
		}
	}
}

// loadKeysV1 restores the keys of a version 1 snapshot: one entry per key
// with its time and both answer structs in full.
func loadKeysV1(d *decoder, t *keyTable, webhooks bool) {
	for n := d.count(); n > 0 && d.err == nil; n-- {
		key := d.string()
		fp := d.uint64LE()
		at := d.varint()
		var h HoldReply
		h.Code = Code(d.byte())
		h.Available = d.varint()
		h.Hold.Token.ProductID = d.uvarint()
		h.Hold.Token.Seq = d.uvarint()
		d.secret(&h.Hold.Token.Secret)
		h.Hold.Qty = d.varint()
		expires := d.varint()
		d.byte() // the hold's status: always active in a remembered answer
		d.uvarint()
		var p PaymentReply
		p.Code = Code(d.byte())
		p.OrderID = d.uvarint()
		p.Queued = d.bool()
		p.Status = OrderStatus(d.byte())
		p.Applied = d.bool()
		if d.err != nil {
			return
		}
		var a keyAnswer
		switch {
		case webhooks:
			a = paymentAnswer(fp, &p)
		case h.Code == OK:
			tok := h.Hold.Token
			a = holdCreatedAnswer(tok.ProductID, tok.Seq, tok.Secret, h.Hold.Qty, expires)
			if a.fp != fp {
				panic(fmt.Sprintf("key %q: fingerprint %x does not match its hold", key, fp))
			}
		case h.Code == CodeInsufficientStock:
			a = holdRefusedAnswer(fp, h.Available)
		default:
			panic(fmt.Sprintf("key %q: remembered hold answer %d", key, h.Code))
		}
		t.remember(key, at, a)
	}
}

// uint64LE reads 8 little-endian bytes.
func (d *decoder) uint64LE() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.src)-d.off < 8 {
		d.err = errRecordShort
		return 0
	}
	v := binary.LittleEndian.Uint64(d.src[d.off:])
	d.off += 8
	return v
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
