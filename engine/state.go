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
	qty          int64
	expiresNanos int64
	status       HoldStatus // HoldActive, HoldOrdered or HoldExpired (by record)
	orderID      uint64
}

// orderState is what an actor keeps of one order.
type orderState struct {
	qty           int64
	amountCents   int64
	status        OrderStatus
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
	secret  [16]byte
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
