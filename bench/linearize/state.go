package linearize

import (
	"hash/maphash"
	"maps"
)

// Product is one catalog entry as seeded into the server.
type Product struct {
	ID         uint64 `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	TotalStock int64  `json:"total_stock"`
	MaxPerHold int64  `json:"max_per_hold"`
}

type stock struct {
	priceCents, maxPerHold           int64
	total, available, reserved, sold int64
}

type hold struct {
	productID uint64
	qty       int64
	orderID   uint64 // 0 while active
	expired   bool
}

type order struct {
	productID uint64
	qty       int64
	amount    int64
	token     string
	state     string // pending, paid, cancelled
	reason    string
}

type holdKey struct {
	productID uint64
	qty       int64
	answer    Output // the first answer, Replayed false
}

type hookKey struct {
	orderID uint64
	success bool
	reason  string
	answer  Output
}

// event is a payment for an order that did not exist yet. Only the first
// one queued for an id matters: it decides a new order's status, and every
// later one finds the order final.
type event struct {
	success bool
	reason  string
}

// state is the model's whole world. Step never changes a state it is given:
// it clones the maps it changes (copy on write).
type state struct {
	products map[uint64]stock
	holds    map[string]hold
	orders   map[uint64]order
	holdKeys map[string]holdKey
	hookKeys map[string]hookKey
	queued   map[uint64]event
	hash     uint64 // of the maps above, set by sealed
}

func newState(catalog []Product) *state {
	s := &state{
		products: make(map[uint64]stock, len(catalog)),
		holds:    map[string]hold{},
		orders:   map[uint64]order{},
		holdKeys: map[string]holdKey{},
		hookKeys: map[string]hookKey{},
		queued:   map[uint64]event{},
	}
	for _, p := range catalog {
		s.products[p.ID] = stock{priceCents: p.PriceCents, maxPerHold: p.MaxPerHold,
			total: p.TotalStock, available: p.TotalStock}
	}
	return s
}

// copy returns a shallow copy: the maps are shared until a with* clones one.
func (s *state) copy() *state { c := *s; return &c }

func (s *state) withProducts() *state { s.products = maps.Clone(s.products); return s }
func (s *state) withHolds() *state    { s.holds = maps.Clone(s.holds); return s }
func (s *state) withOrders() *state   { s.orders = maps.Clone(s.orders); return s }
func (s *state) withHoldKeys() *state { s.holdKeys = maps.Clone(s.holdKeys); return s }
func (s *state) withHookKeys() *state { s.hookKeys = maps.Clone(s.hookKeys); return s }
func (s *state) withQueued() *state   { s.queued = maps.Clone(s.queued); return s }

// sealed returns s with its hash computed. Every state the checker sees
// is sealed (the model's Init and Step do it), so that stateEqual can tell
// most different states apart by hash alone.
func (s *state) sealed() *state {
	s.hash = stateHash(s)
	return s
}

func stateEqual(a, b *state) bool {
	return a.hash == b.hash && maps.Equal(a.products, b.products) && maps.Equal(a.holds, b.holds) &&
		maps.Equal(a.orders, b.orders) && maps.Equal(a.holdKeys, b.holdKeys) &&
		maps.Equal(a.hookKeys, b.hookKeys) && maps.Equal(a.queued, b.queued)
}

var hashSeed = maphash.MakeSeed()

type kv[K comparable, V comparable] struct {
	k K
	v V
}

// hashMap combines entry hashes with +, so the result does not depend on
// iteration order: equal maps hash equal.
func hashMap[K comparable, V comparable](m map[K]V) uint64 {
	var h uint64
	for k, v := range m {
		h += maphash.Comparable(hashSeed, kv[K, V]{k, v})
	}
	return h
}

func stateHash(s *state) uint64 {
	h := hashMap(s.products)
	h = h*31 + hashMap(s.holds)
	h = h*31 + hashMap(s.orders)
	h = h*31 + hashMap(s.holdKeys)
	h = h*31 + hashMap(s.hookKeys)
	return h*31 + hashMap(s.queued)
}
