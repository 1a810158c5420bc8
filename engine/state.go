package engine

import "fmt"

// counts are a product's stock numbers. The invariant, checked after every
// applied record: total = available + reserved + sold, none negative.
type counts struct {
	total, available, reserved, sold int64
}

func (c counts) check(productID uint64) {
	if c.available < 0 || c.reserved < 0 || c.sold < 0 || c.total != c.available+c.reserved+c.sold {
		panic(fmt.Sprintf("engine: stock invariant broken for product %d: total=%d available=%d reserved=%d sold=%d",
			productID, c.total, c.available, c.reserved, c.sold))
	}
}

// holdState is what an actor keeps of one hold.
type holdState struct {
	secret       [16]byte
	qty          int64
	expiresNanos int64
	status       HoldStatus // HoldActive, HoldOrdered or HoldExpired (by record)
	orderID      uint64
}

// holdChunkLen is how many holds one chunk of a holdLog stores (48 bytes
// each: 192 KiB a chunk).
const holdChunkLen = 4096

// holdLog keeps a product's holds in creation order, addressed by sequence
// number: creating one is an append, finding one an index, and forgetting
// old ones drops a prefix. Hold sequence numbers start at 1.
//
// The holds live in fixed-size chunks, not in one slice: a slice of
// millions of holds that grows by copying itself would stall the actor
// (and every request queued for the product) for tens of milliseconds
// at each growth, which is what the hold path's maxima showed. A chunk is
// allocated when the newest fills and dropped when the oldest is all
// forgotten; one dropped chunk is kept for reuse.
type holdLog struct {
	firstSeq uint64 // sequence number of the oldest kept hold
	head     int    // its index in chunks[0]
	count    int    // holds kept
	chunks   []*[holdChunkLen]holdState
	spare    *[holdChunkLen]holdState
}

// nextSeq is the sequence number the next hold gets.
func (l *holdLog) nextSeq() uint64 { return l.firstSeq + uint64(l.count) }

// slot is the storage of kept hold seq.
func (l *holdLog) slot(seq uint64) *holdState {
	pos := l.head + int(seq-l.firstSeq)
	return &l.chunks[pos/holdChunkLen][pos%holdChunkLen]
}

// get returns the hold seq if it is kept and its secret matches.
func (l *holdLog) get(t HoldToken) (*holdState, bool) {
	if t.Seq < l.firstSeq || t.Seq >= l.nextSeq() {
		return nil, false
	}
	h := l.slot(t.Seq)
	if !t.secretMatches(&h.secret) {
		return nil, false
	}
	return h, true
}

// at returns hold seq, which must be kept.
func (l *holdLog) at(seq uint64) *holdState {
	if seq < l.firstSeq || seq >= l.nextSeq() {
		panic(fmt.Sprintf("engine: hold %d is not kept (kept: %d..%d)", seq, l.firstSeq, l.nextSeq()-1))
	}
	return l.slot(seq)
}

// add appends hold seq, which must be the next one.
func (l *holdLog) add(seq uint64, h holdState) {
	if seq != l.nextSeq() {
		panic(fmt.Sprintf("engine: hold %d created out of sequence (next is %d)", seq, l.nextSeq()))
	}
	if pos := l.head + l.count; pos/holdChunkLen == len(l.chunks) {
		c := l.spare
		if c == nil {
			c = new([holdChunkLen]holdState)
		}
		l.spare = nil
		l.chunks = append(l.chunks, c)
	}
	l.count++
	*l.slot(seq) = h
}

// forgetBefore drops the oldest holds while they are finished (ordered or
// expired) and expired before cutoffNanos. An active hold stops it: holds
// share one TTL, so older ones behind it are few and soon forgotten.
func (l *holdLog) forgetBefore(cutoffNanos int64) {
	for l.count > 0 {
		h := &l.chunks[0][l.head]
		if h.status == HoldActive || h.expiresNanos >= cutoffNanos {
			return
		}
		*h = holdState{}
		l.firstSeq++
		l.count--
		if l.head++; l.head == holdChunkLen {
			l.spare = l.chunks[0]
			l.chunks[0] = nil
			l.chunks = l.chunks[1:]
			l.head = 0
		}
	}
}

// each calls fn for every kept hold from seq on, oldest first, while fn
// returns true.
func (l *holdLog) each(seq uint64, fn func(seq uint64, h *holdState) bool) {
	for seq = max(seq, l.firstSeq); seq < l.nextSeq(); seq++ {
		if !fn(seq, l.slot(seq)) {
			return
		}
	}
}

// orderState is what an actor keeps of one order.
type orderState struct {
	qty           int64
	amountCents   int64
	status        OrderStatus
	holdSeq       uint64 // the hold it was made from, for its token
	secret        [16]byte
	createdNanos  int64
	updatedNanos  int64
	deadlineNanos int64 // payment deadline, 0 when the order TTL is off
	failureReason string
}

// deadline is an entry of an actor's expiry heap: a hold's expiry or an
// order's payment deadline. Entries are not removed when their hold or order
// moves on; a popped entry is checked against the current state.
type deadline struct {
	atNanos int64
	orderID uint64 // 0 for a hold
	holdSeq uint64
}

// deadlineChunkLen is how many entries one chunk of a deadlineHeap holds
// (24 bytes each: 192 KiB a chunk).
const deadlineChunkLen = 8192

// deadlineHeap is a binary min-heap by atNanos, written out to avoid the
// interface conversions (and allocations) of container/heap. Its entries
// live in fixed-size chunks, for the reason holdLog's do: a heap of
// millions of deadlines must not grow by copying itself on the actor.
type deadlineHeap struct {
	n      int
	chunks []*[deadlineChunkLen]deadline
	spare  *[deadlineChunkLen]deadline
}

func (h *deadlineHeap) len() int { return h.n }

func (h *deadlineHeap) at(i int) *deadline {
	return &h.chunks[i/deadlineChunkLen][i%deadlineChunkLen]
}

// min is the earliest deadline; the heap must not be empty.
func (h *deadlineHeap) min() *deadline { return h.at(0) }

func (h *deadlineHeap) push(d deadline) {
	if h.n/deadlineChunkLen == len(h.chunks) {
		c := h.spare
		if c == nil {
			c = new([deadlineChunkLen]deadline)
		}
		h.spare = nil
		h.chunks = append(h.chunks, c)
	}
	i := h.n
	h.n++
	*h.at(i) = d
	for i > 0 {
		parent := (i - 1) / 2
		p, c := h.at(parent), h.at(i)
		if p.atNanos <= c.atNanos {
			break
		}
		*p, *c = *c, *p
		i = parent
	}
}

func (h *deadlineHeap) pop() deadline {
	top := *h.at(0)
	h.n--
	last := h.at(h.n)
	*h.at(0) = *last
	*last = deadline{}
	if h.n%deadlineChunkLen == 0 {
		// The last chunk is empty now: keep it as the spare.
		k := len(h.chunks) - 1
		h.spare = h.chunks[k]
		h.chunks[k] = nil
		h.chunks = h.chunks[:k]
	}
	i := 0
	for {
		l, r, least := 2*i+1, 2*i+2, i
		if l < h.n && h.at(l).atNanos < h.at(least).atNanos {
			least = l
		}
		if r < h.n && h.at(r).atNanos < h.at(least).atNanos {
			least = r
		}
		if least == i {
			break
		}
		a, b := h.at(i), h.at(least)
		*a, *b = *b, *a
		i = least
	}
	return top
}
