package engine

import (
	"sync"
	"sync/atomic"
)

// orderDir maps order ids to their products, and keeps webhooks that arrived
// before their order. Each id's shard mutex serialises "queue a webhook for
// id" against "create order id": a webhook either sees the order (and goes to
// its actor) or is queued before the order's creation takes the queue, and its
// record is submitted to the journal under the same lock, so the log holds
// them in that order too.
type orderDir struct {
	queuedMax   int64
	queuedCount atomic.Int64
	shards      [orderShardCount]orderShard
}

const orderShardCount = 64

type orderShard struct {
	mu     sync.Mutex
	owner  map[uint64]uint64          // order id → product id; written once per order
	queued map[uint64][]queuedWebhook // order id → webhooks waiting for it
	_      [40]byte
}

// queuedWebhook is a payment event for an order that did not exist yet.
type queuedWebhook struct {
	success       bool
	reason        string
	deadlineNanos int64 // dropped unapplied once the order's creation time reaches it
}

func newOrderDir(queuedMax int) *orderDir {
	d := &orderDir{queuedMax: int64(queuedMax)}
	for i := range d.shards {
		d.shards[i].owner = make(map[uint64]uint64)
		d.shards[i].queued = make(map[uint64][]queuedWebhook)
	}
	return d
}

func (d *orderDir) shard(orderID uint64) *orderShard {
	return &d.shards[orderID%orderShardCount]
}

// product returns the id of the product that owns order orderID.
func (d *orderDir) product(orderID uint64) (uint64, bool) {
	s := d.shard(orderID)
	s.mu.Lock()
	p, ok := s.owner[orderID]
	s.mu.Unlock()
	return p, ok
}

// publish records that orderID belongs to productID and takes the webhooks
// queued for it, oldest first.
func (d *orderDir) publish(orderID, productID uint64) []queuedWebhook {
	s := d.shard(orderID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.owner[orderID]; dup {
		panic("engine: order id published twice")
	}
	s.owner[orderID] = productID
	evs := s.queued[orderID]
	if evs != nil {
		delete(s.queued, orderID)
		d.queuedCount.Add(int64(-len(evs)))
	}
	return evs
}

// queueLocked adds ev for orderID; the caller holds the shard's mutex.
func (d *orderDir) queueLocked(s *orderShard, orderID uint64, ev queuedWebhook) {
	s.queued[orderID] = append(s.queued[orderID], ev)
	d.queuedCount.Add(1)
}

// sweep drops queued webhooks whose deadline passed: their order can no
// longer apply them, so they only hold memory and a place under queuedMax.
func (d *orderDir) sweep(nowNanos int64) (dropped int) {
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		for id, evs := range s.queued {
			kept := evs[:0]
			for _, ev := range evs {
				if ev.deadlineNanos > nowNanos {
					kept = append(kept, ev)
				}
			}
			dropped += len(evs) - len(kept)
			if len(kept) == 0 {
				delete(s.queued, id)
			} else {
				s.queued[id] = kept
			}
		}
		s.mu.Unlock()
	}
	d.queuedCount.Add(int64(-dropped))
	return dropped
}
