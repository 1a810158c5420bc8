package engine

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// keyTable remembers the first answer given under each idempotency key of one
// namespace (holds, or webhooks). It is sharded by key hash; a shard's mutex
// guards only its map, never stock. Entries are written by the apply code
// (live and replay alike) and become visible to replays only once durable.
type keyTable struct {
	entriesMax int64
	entries    atomic.Int64
	shards     [keyShardCount]keyShard
}

const keyShardCount = 64

var keyHashSeed = maphash.MakeSeed()

type keyShard struct {
	mu sync.Mutex
	m  map[string]*keyEntry
	_  [40]byte // keep shards on separate cache lines
}

// keyEntry is one key's first request (by fingerprint) and first answer.
// Until durable, duplicates wait on done; an aborted entry is removed and its
// waiters start over.
type keyEntry struct {
	key     string
	fp      uint64
	atNanos int64
	durable bool
	done    chan struct{} // closed when durable or aborted; nil for replayed entries
	hold    HoldReply
	payment PaymentReply
}

type keyOutcome uint8

const (
	keyFresh    keyOutcome = iota // the caller owns the entry and must finish or abort it
	keyReplay                     // a durable answer exists: send it again
	keyMismatch                   // the key was used with a different request
	keyFull                       // the table is at entriesMax
)

func newKeyTable(entriesMax int) *keyTable {
	t := &keyTable{entriesMax: int64(entriesMax)}
	for i := range t.shards {
		t.shards[i].m = make(map[string]*keyEntry)
	}
	return t
}

func (t *keyTable) shard(key string) *keyShard {
	return &t.shards[maphash.String(keyHashSeed, key)%keyShardCount]
}

// begin claims key for a request with fingerprint fp. Concurrent deliveries
// of one key are serialised here: the first gets keyFresh, the others wait
// until its answer is durable and then get keyReplay, or keyMismatch if they
// differ from it.
func (t *keyTable) begin(key []byte, fp uint64) (*keyEntry, keyOutcome) {
	s := t.shard(string(key)) // no allocation: the conversion does not escape
	for {
		s.mu.Lock()
		e := s.m[string(key)]
		if e == nil {
			if t.entries.Load() >= t.entriesMax {
				s.mu.Unlock()
				return nil, keyFull
			}
			e = &keyEntry{key: string(key), fp: fp, done: make(chan struct{})}
			s.m[e.key] = e
			t.entries.Add(1)
			s.mu.Unlock()
			return e, keyFresh
		}
		if !e.durable {
			// Wait for the first request's answer even when this one differs:
			// a 422 must not reveal a request that may yet be aborted, nor
			// one whose effect is not yet visible (linearizability).
			done := e.done
			s.mu.Unlock()
			<-done
			continue
		}
		s.mu.Unlock()
		if e.fp != fp {
			return e, keyMismatch
		}
		return e, keyReplay
	}
}

// remember stores an answer under key, from the apply code. A pending entry
// (live request) gets the answer; a missing one (replay) is created durable.
// A durable entry keeps its first answer.
func (t *keyTable) remember(key string, fp uint64, atNanos int64, hold *HoldReply, payment *PaymentReply) {
	s := t.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[key]
	if e == nil {
		e = &keyEntry{key: key, fp: fp, durable: true}
		s.m[key] = e
		t.entries.Add(1)
	} else if e.durable {
		return
	}
	e.atNanos = atNanos
	if hold != nil {
		e.hold = *hold
	}
	if payment != nil {
		e.payment = *payment
	}
}

// finish makes e's answer visible to later deliveries of its key.
func (t *keyTable) finish(e *keyEntry) {
	s := t.shard(e.key)
	s.mu.Lock()
	e.durable = true
	close(e.done)
	s.mu.Unlock()
}

// abort forgets e: its request changed nothing, so a retry must run afresh.
func (t *keyTable) abort(e *keyEntry) {
	s := t.shard(e.key)
	s.mu.Lock()
	if s.m[e.key] == e {
		delete(s.m, e.key)
		t.entries.Add(-1)
	}
	close(e.done)
	s.mu.Unlock()
}

// sweep forgets durable entries answered before cutoffNanos.
func (t *keyTable) sweep(cutoffNanos int64) (dropped int) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			if e.durable && e.atNanos < cutoffNanos {
				delete(s.m, k)
				dropped++
			}
		}
		s.mu.Unlock()
	}
	t.entries.Add(int64(-dropped))
	return dropped
}

// Fingerprints identify a request's meaning, so that "the same body" means
// the same fields whatever their order or spacing. FNV-1a, 64 bits: stable
// across restarts, which replay needs.
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

func fnvUint64(h, v uint64) uint64 {
	for i := 0; i < 8; i++ {
		h ^= v & 0xff
		h *= fnvPrime64
		v >>= 8
	}
	return h
}

func fnvString(h uint64, s string) uint64 {
	h = fnvUint64(h, uint64(len(s)))
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return h
}

func holdFingerprint(productID uint64, qty int64) uint64 {
	return fnvUint64(fnvUint64(fnvOffset64, productID), uint64(qty))
}

func paymentFingerprint(orderID uint64, success bool, reason string) uint64 {
	s := uint64(0)
	if success {
		s = 1
	}
	return fnvString(fnvUint64(fnvUint64(fnvOffset64^0x5a5a, orderID), s), reason)
}
