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
// outlived its retention. It is CaptureSnapshot and AppendTo in one.
func (e *Engine) AppendSnapshot(dst []byte, now time.Time) []byte {
	return e.CaptureSnapshot(now).AppendTo(dst)
}

// SnapshotView is the engine's state as of one instant: taken while the
// engine is quiescent (CaptureSnapshot, under Pause), encoded after it
// resumed (AppendTo), so that a snapshot pauses the engine only for copies
// of flat arrays, not for its encoding. It shares nothing the engine
// writes afterwards: holds (holdLog), orders (orderTable) and idempotency
// keys (keyView) are copy-on-write views, whose taking copies lists of
// chunks, about one pointer per thousand holds or orders.
type SnapshotView struct {
	lastOrderID uint64
	products    []productView
	queued      []queuedItem
	holdKeys    keyView
	webhookKeys keyView
}

// productView is one product's part of a SnapshotView.
type productView struct {
	id                     uint64
	name                   string
	priceCents, maxPerHold int64
	counts                 counts
	holds                  holdLog // a view: never written
	orders                 []*orderChunk
}

// queuedItem is one queued webhook of a SnapshotView.
type queuedItem struct {
	id uint64
	ev queuedWebhook
}

// CaptureSnapshot takes a SnapshotView of the state. The engine must be
// quiescent (before Start, after Stop, or paused); the view stays valid
// after it resumes. now decides what has outlived its retention: finished
// holds older than ExpiredHoldRetention, queued webhooks past their
// deadline and idempotency keys past their TTL are left out.
func (e *Engine) CaptureSnapshot(now time.Time) *SnapshotView {
	nowNanos := now.UnixNano()
	holdCutoff := nowNanos - int64(e.cfg.ExpiredHoldRetention)
	actors := e.products.Load().ordered
	v := &SnapshotView{lastOrderID: e.lastOrderID.Load(), products: make([]productView, len(actors))}
	for i, a := range actors {
		v.products[i] = productView{id: a.id, name: a.name, priceCents: a.priceCents, maxPerHold: a.maxPerHold,
			counts: a.counts, holds: a.holds.view(holdCutoff), orders: a.orders.view()}
	}
	for i := range e.orders.shards {
		for id, evs := range e.orders.shards[i].queued {
			for _, ev := range evs {
				if ev.deadlineNanos > nowNanos {
					v.queued = append(v.queued, queuedItem{id, ev})
				}
			}
		}
	}
	v.holdKeys = e.holdKeys.view(nowNanos)
	v.webhookKeys = e.webhookKeys.view(nowNanos)
	return v
}

// AppendTo appends the encoded view to dst; the engine may be running.
// One state always encodes to the same bytes.
func (v *SnapshotView) AppendTo(dst []byte) []byte {
	dst = append(dst, snapshotVersion)
	dst = binary.AppendUvarint(dst, v.lastOrderID)
	dst = binary.AppendUvarint(dst, uint64(len(v.products)))
	for i := range v.products {
		p := &v.products[i]
		dst = binary.AppendUvarint(dst, p.id)
		dst = appendString(dst, p.name)
		dst = binary.AppendVarint(dst, p.priceCents)
		dst = binary.AppendVarint(dst, p.maxPerHold)
		for _, n := range [...]int64{p.counts.total, p.counts.available, p.counts.reserved, p.counts.sold} {
			dst = binary.AppendVarint(dst, n)
		}
		dst = binary.AppendUvarint(dst, p.holds.firstSeq)
		dst = binary.AppendUvarint(dst, uint64(p.holds.n))
		p.holds.each(func(_ uint64, h *holdState) {
			dst = append(dst, h.secret[:]...)
			dst = binary.AppendVarint(dst, h.qty)
			dst = binary.AppendVarint(dst, h.expiresNanos)
			dst = append(dst, byte(h.status))
			dst = binary.AppendUvarint(dst, h.orderID)
		})
		dst = appendOrders(dst, p.orders)
	}
	dst = appendQueued(dst, v.queued)
	dst = appendKeys(dst, &v.holdKeys)
	dst = appendKeys(dst, &v.webhookKeys)
	return dst
}

// appendOrders writes a product's orders by id. They are kept in creation
// order, which is id order (ids are handed out increasing, and each
// product's actor creates its orders one after another); a table that is
// not is sorted first, to be safe.
func appendOrders(dst []byte, chunks []*orderChunk) []byte {
	type ref struct {
		id uint64
		o  *orderState
	}
	var refs []ref
	sorted, n, last := true, 0, uint64(0)
	for _, c := range chunks {
		for i, id := range c.ids {
			sorted = sorted && (n == 0 || id > last)
			last = id
			n++
			refs = append(refs, ref{id, &c.items[i]})
		}
	}
	if !sorted {
		slices.SortFunc(refs, func(a, b ref) int { return cmp.Compare(a.id, b.id) })
	}
	dst = binary.AppendUvarint(dst, uint64(n))
	for _, r := range refs {
		o := r.o
		dst = binary.AppendUvarint(dst, r.id)
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
	return dst
}

func appendQueued(dst []byte, items []queuedItem) []byte {
	items = slices.Clone(items) // the view stays as taken
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

// viewRef is one answer of a keyView: its generation view and offset,
// and the first 8 bytes of its key (big-endian, zero-padded), which order
// most pairs of keys without reading them.
type viewRef struct {
	prefix uint64
	gen    uint32 // index into keyView.gens
	off    uint32
}

func keyPrefix(key []byte) uint64 {
	var b [8]byte
	copy(b[:], key)
	return binary.BigEndian.Uint64(b[:])
}

// appendKeys writes the answers of v (those an applied record
// remembered), by generation: each generation as the span it covers and
// its answers sorted by key, so that one state always encodes to the same
// bytes. Claims without an answer have no record and are left out, as a
// crash would leave them. One generation's references are in memory at a
// time (16 bytes per answer).
func appendKeys(dst []byte, v *keyView) []byte {
	order := make([]int, len(v.gens)) // v.gens by generation; a generation spans shards
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(v.gens[a].gen, v.gens[b].gen) })
	groups := 0
	for i := range order {
		if i == 0 || v.gens[order[i]].gen != v.gens[order[i-1]].gen {
			groups++
		}
	}
	dst = binary.AppendUvarint(dst, uint64(groups))
	var refs []viewRef
	keyOf := func(r viewRef) []byte {
		rec := v.gens[r.gen].record(r.off)
		return rec[2 : 2+int(rec[1])]
	}
	for i := 0; i < len(order); {
		gen := v.gens[order[i]].gen
		refs = refs[:0]
		for ; i < len(order) && v.gens[order[i]].gen == gen; i++ {
			for _, sl := range v.gens[order[i]].slots {
				if uint32(sl>>32) >= 2 {
					r := viewRef{gen: uint32(order[i]), off: uint32(sl)}
					r.prefix = keyPrefix(keyOf(r))
					refs = append(refs, r)
				}
			}
		}
		slices.SortFunc(refs, func(a, b viewRef) int {
			if c := cmp.Compare(a.prefix, b.prefix); c != 0 {
				return c
			}
			return bytes.Compare(keyOf(a), keyOf(b))
		})
		start := gen * v.spanNanos
		dst = binary.AppendVarint(dst, start)
		dst = binary.AppendVarint(dst, start+v.spanNanos)
		dst = binary.AppendUvarint(dst, uint64(len(refs)))
		for _, r := range refs {
			key, a := decodeKeyRecord(v.gens[r.gen].record(r.off), start)
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
		a.orders.set(id, o)
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
	a.published.store(a.counts, a.releaseDueNanos())
}

// checkHeldUnits asserts that the counts agree with the holds and orders:
// reserved units are those of active holds and pending orders, sold units
// those of paid orders.
func (a *actor) checkHeldUnits() {
	var reserved, sold int64
	a.holds.each(func(_ uint64, h *holdState) {
		if h.status == HoldActive {
			reserved += h.qty
		}
	})
	a.orders.each(func(_ uint64, o *orderState) {
		switch o.status {
		case OrderPending:
			reserved += o.qty
		case OrderPaid:
			sold += o.qty
		}
	})
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
