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

// holdLog keeps a product's holds in creation order, addressed by sequence
// number: creating one is an append, finding one an index, and forgetting
// old ones drops a prefix. Hold sequence numbers start at 1.
type holdLog struct {
	firstSeq uint64 // sequence number of items[0]
	items    []holdState
}

// nextSeq is the sequence number the next hold gets.
func (l *holdLog) nextSeq() uint64 { return l.firstSeq + uint64(len(l.items)) }

// get returns the hold seq if it is kept and its secret matches.
func (l *holdLog) get(t HoldToken) (*holdState, bool) {
	if t.Seq < l.firstSeq || t.Seq >= l.nextSeq() {
		return nil, false
	}
	h := &l.items[t.Seq-l.firstSeq]
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
	return &l.items[seq-l.firstSeq]
}

// add appends hold seq, which must be the next one.
func (l *holdLog) add(seq uint64, h holdState) {
	if seq != l.nextSeq() {
		panic(fmt.Sprintf("engine: hold %d created out of sequence (next is %d)", seq, l.nextSeq()))
	}
	l.items = append(l.items, h)
}

// forgetBefore drops the oldest holds while they are finished (ordered or
// expired) and expired before cutoffNanos. An active hold stops it: holds
// share one TTL, so older ones behind it are few and soon forgotten.
func (l *holdLog) forgetBefore(cutoffNanos int64) {
	n := 0
	for n < len(l.items) && l.items[n].status != HoldActive && l.items[n].expiresNanos < cutoffNanos {
		n++
	}
	if n > 0 {
		clear(l.items[:n])
		l.items = l.items[n:]
		l.firstSeq += uint64(n)
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

// deadlineHeap is a binary min-heap by atNanos, written out to avoid the
// interface conversions (and allocations) of container/heap.
type deadlineHeap []deadline

func (h *deadlineHeap) push(d deadline) {
	*h = append(*h, d)
	s := *h
	i := len(s) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if s[parent].atNanos <= s[i].atNanos {
			break
		}
		s[parent], s[i] = s[i], s[parent]
		i = parent
	}
}

func (h *deadlineHeap) pop() deadline {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	i := 0
	for {
		l, r, min := 2*i+1, 2*i+2, i
		if l < len(s) && s[l].atNanos < s[min].atNanos {
			min = l
		}
		if r < len(s) && s[r].atNanos < s[min].atNanos {
			min = r
		}
		if min == i {
			break
		}
		s[i], s[min] = s[min], s[i]
		i = min
	}
	*h = s
	return top
}
