package engine

import "slices"

// orderTable keeps one product's orders (for the life of the data
// directory: orders are never dropped) in creation order, in chunks of at
// most orderChunkLen, found through an index by id. A snapshot shares the
// chunks copy-on-write: taking its view (orderTable.view) marks every
// chunk shared and copies only the list of chunks; the first write to a
// shared chunk afterwards copies that chunk. So a snapshot pauses the
// engine for about one pointer per orderChunkLen orders, not for a copy of
// them. Owned by the product's actor (and the snapshot, while paused).
type orderTable struct {
	index  map[uint64]uint32 // order id → position in creation order
	chunks []*orderChunk     // all full but the last
}

// orderChunkLen is the most orders per chunk: the first write to a chunk
// after a snapshot copies its up to 1,024 orders (about 110 KiB).
const orderChunkLen = 1024

type orderChunk struct {
	shared bool // a snapshot view reads it: copy before writing
	ids    []uint64
	items  []orderState
}

func newOrderTable() orderTable { return orderTable{index: make(map[uint64]uint32)} }

func (t *orderTable) len() int { return len(t.index) }

// get returns order id.
func (t *orderTable) get(id uint64) (orderState, bool) {
	pos, ok := t.index[id]
	if !ok {
		return orderState{}, false
	}
	return t.chunks[pos/orderChunkLen].items[pos%orderChunkLen], true
}

// set stores order id: a new one goes after the others.
func (t *orderTable) set(id uint64, o orderState) {
	pos, ok := t.index[id]
	if !ok {
		pos = uint32(len(t.index))
		if pos%orderChunkLen == 0 {
			// The first chunk grows as needed (most products have few
			// orders); a later one is made full size, as append would
			// overshoot it by a fifth.
			c := &orderChunk{}
			if len(t.chunks) > 0 {
				c.ids, c.items = make([]uint64, 0, orderChunkLen), make([]orderState, 0, orderChunkLen)
			}
			t.chunks = append(t.chunks, c)
		}
		t.index[id] = pos
		c := t.own(pos / orderChunkLen)
		c.ids = append(c.ids, id)
		c.items = append(c.items, o)
		return
	}
	t.own(pos / orderChunkLen).items[pos%orderChunkLen] = o
}

// own returns chunk i, copied first if a snapshot view shares it.
func (t *orderTable) own(i uint32) *orderChunk {
	c := t.chunks[i]
	if c.shared {
		c = &orderChunk{ids: slices.Clone(c.ids), items: slices.Clone(c.items)}
		t.chunks[i] = c
	}
	return c
}

// each calls f for every order, in creation order.
func (t *orderTable) each(f func(id uint64, o *orderState)) {
	for _, c := range t.chunks {
		for i := range c.items {
			f(c.ids[i], &c.items[i])
		}
	}
}

// view returns the chunks as they are now; they do not change afterwards
// (see orderTable).
func (t *orderTable) view() []*orderChunk {
	for _, c := range t.chunks {
		c.shared = true
	}
	return slices.Clone(t.chunks)
}
