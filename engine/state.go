package engine

import (
	"fmt"
	"slices"
)

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

// holdLog keeps a product's holds in creation order, addressed by sequence
// number: creating one is an append, finding one an index, and forgetting
// old ones drops a prefix. Hold sequence numbers start at 1.
//
// The holds are stored in chunks of holdChunkLen, shared copy-on-write with
// snapshot views (view): taking a view marks the chunks shared and copies
// only the list of them; the first write to a shared chunk afterwards
// (mut, add) copies that chunk. Reads (get, at) never copy.
type holdLog struct {
	firstSeq uint64       // sequence number of the first kept hold
	skip     int          // forgotten holds at the front of chunks[0]
	n        int          // kept holds
	chunks   []*holdChunk // all full but the last
}

// holdChunkLen is the most holds per chunk: the first write to one after a
// snapshot copies up to 1,024 holds (48 KiB).
const holdChunkLen = 1024

type holdChunk struct {
	shared bool // a snapshot view reads it: copy before writing
	items  []holdState
}

// nextSeq is the sequence number the next hold gets.
func (l *holdLog) nextSeq() uint64 { return l.firstSeq + uint64(l.n) }

// kept reports whether hold seq is kept.
func (l *holdLog) kept(seq uint64) bool { return seq >= l.firstSeq && seq < l.nextSeq() }

// slot returns the chunk index and offset of kept hold seq.
func (l *holdLog) slot(seq uint64) (int, int) {
	p := int(seq-l.firstSeq) + l.skip
	return p / holdChunkLen, p % holdChunkLen
}

// get returns the hold seq if it is kept and its secret matches; the hold
// is for reading only (see mut).
func (l *holdLog) get(t HoldToken) (*holdState, bool) {
	if !l.kept(t.Seq) {
		return nil, false
	}
	h := l.at(t.Seq)
	if !t.secretMatches(&h.secret) {
		return nil, false
	}
	return h, true
}

// at returns hold seq, which must be kept, for reading only (see mut).
func (l *holdLog) at(seq uint64) *holdState {
	if !l.kept(seq) {
		panic(fmt.Sprintf("engine: hold %d is not kept (kept: %d..%d)", seq, l.firstSeq, l.nextSeq()-1))
	}
	c, i := l.slot(seq)
	return &l.chunks[c].items[i]
}

// mut returns hold seq, which must be kept, for writing.
func (l *holdLog) mut(seq uint64) *holdState {
	l.at(seq) // the range check
	c, i := l.slot(seq)
	return &l.own(c).items[i]
}

// own returns chunk c, copied first if a snapshot view shares it.
func (l *holdLog) own(c int) *holdChunk {
	ch := l.chunks[c]
	if ch.shared {
		ch = &holdChunk{items: slices.Clone(ch.items)}
		l.chunks[c] = ch
	}
	return ch
}

// add appends hold seq, which must be the next one.
func (l *holdLog) add(seq uint64, h holdState) {
	if seq != l.nextSeq() {
		panic(fmt.Sprintf("engine: hold %d created out of sequence (next is %d)", seq, l.nextSeq()))
	}
	if (l.skip+l.n)%holdChunkLen == 0 {
		c := &holdChunk{} // the first grows as needed, later ones are made full size (see orderTable.set)
		if len(l.chunks) > 0 || l.firstSeq > 1 {
			c.items = make([]holdState, 0, holdChunkLen)
		}
		l.chunks = append(l.chunks, c)
	}
	ch := l.own(len(l.chunks) - 1)
	ch.items = append(ch.items, h)
	l.n++
}

// forgetBefore drops the oldest holds while they are finished (ordered or
// expired) and expired before cutoffNanos. An active hold stops it: holds
// share one TTL, so older ones behind it are few and soon forgotten.
func (l *holdLog) forgetBefore(cutoffNanos int64) {
	n := l.forgettable(cutoffNanos)
	if n == 0 {
		return
	}
	l.firstSeq += uint64(n)
	l.n -= n
	l.skip += n
	for l.skip >= holdChunkLen { // whole chunks forgotten
		l.chunks[0] = nil
		l.chunks = l.chunks[1:]
		l.skip -= holdChunkLen
	}
}

// forgettable is how many holds forgetBefore(cutoffNanos) would drop.
func (l *holdLog) forgettable(cutoffNanos int64) int {
	n := 0
	for seq := l.firstSeq; n < l.n; seq++ {
		if h := l.at(seq); h.status == HoldActive || h.expiresNanos >= cutoffNanos {
			break
		}
		n++
	}
	return n
}

// each calls f for every kept hold, oldest first, for reading.
func (l *holdLog) each(f func(seq uint64, h *holdState)) {
	seq := l.firstSeq
	for c, ch := range l.chunks {
		from := 0
		if c == 0 {
			from = l.skip
		}
		for i := from; i < len(ch.items); i++ {
			f(seq, &ch.items[i])
			seq++
		}
	}
}

// view returns the holds kept at cutoffNanos (as forgetBefore would leave
// them) in a holdLog of their own that does not change afterwards: the
// chunks are shared copy-on-write.
func (l *holdLog) view(cutoffNanos int64) holdLog {
	for _, ch := range l.chunks {
		ch.shared = true
	}
	v := holdLog{firstSeq: l.firstSeq, skip: l.skip, n: l.n, chunks: slices.Clone(l.chunks)}
	v.forgetBefore(cutoffNanos) // on v's own chunk list: the chunks are not written
	return v
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
