package engine

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// keyTable remembers the first answer given under each idempotency key of one
// namespace (holds, or webhooks), in bounded memory:
//
//   - A remembered answer is a compact record (kind, key bytes, the few
//     numbers the answer needs) appended to an arena of byte chunks, found
//     through an open-addressing index of 8-byte slots: about 50 bytes plus
//     the key per answer, no pointer per entry for the GC to trace.
//   - Answers are grouped by time generation: generation g holds the answers
//     given in [g·span, (g+1)·span), span = ceil(IdempotencyKeyTTL /
//     keyGenerations). A lookup at time t sees the generations that may still
//     hold an answer younger than the TTL, so an answer is remembered for at
//     least the TTL and at most TTL + span. Expiry drops a whole generation
//     (an O(1) pointer swap per shard), never scanning entries.
//   - The table's memory is charged to a keyBudget shared by both namespaces;
//     a new key is refused (keyFull) once the budget is used up, while the
//     keys already remembered still replay.
//
// Only a key whose request is in flight has a wait mechanism: a claim in the
// shard's claims map, and the shard's condition variable that wakes
// duplicates when the claim ends. Claims are as many as requests in flight;
// an ended claim goes on its shard's free list and is reused, key buffer
// included, so a fresh key costs no allocation in steady state.
//
// The table is sharded by key hash; a shard's mutex guards only its claims
// and generations, never stock. Answers are written by the apply code (live
// and replay alike); a live answer becomes visible to other requests only
// when its claim ends, that is once it is durable.
type keyTable struct {
	ttlNanos  int64
	spanNanos int64 // one generation: ceil(ttlNanos / keyGenerations)
	budget    *keyBudget
	shards    [keyShardCount]keyShard
}

const (
	keyShardCount = 256 // many shards keep each index small, so its growth pauses one shard briefly
	// keyGenerations is how many generations one TTL spans: an answer is
	// kept up to TTL·(1 + 1/keyGenerations).
	keyGenerations = 8
	// keyRingSlots: at any time at most keyGenerations+1 generations are
	// live; one more slot lets a new generation start while the oldest is
	// not yet swept.
	keyRingSlots = keyGenerations + 2

	// KeyBytesMax is the longest idempotency key the engine remembers
	// (docs/API.md: 1 to 255 visible ASCII characters).
	KeyBytesMax = 255

	keyChunkShift    = 14 // an arena chunk is at most 16 KiB, so an offset inside it fits 14 bits
	keyChunkBytesMax = 1 << keyChunkShift
	keyChunkBytesMin = 512 // first chunk of a generation: small generations stay small
	keyChunksMax     = 1 << (32 - keyChunkShift)

	keyIndexSlotsMin = 16
	keySlotBytes     = 8

	// keyTagDead marks an index slot whose answer was taken back (abort):
	// live tags are at least 2, so lookups never match it.
	keyTagDead = 1
)

var keyHashSeed = maphash.MakeSeed() // in-memory index only: never stored

type keyShard struct {
	mu   sync.Mutex
	cond sync.Cond // on mu; broadcast when a claim ends
	// claims: keys whose first request is in flight. A key aliases its
	// claim's buffer, which newClaim rewrites only after release has
	// deleted it here; lookups by string(key) allocate nothing.
	claims map[string]*keyClaim
	free   *keyClaim            // ended claims kept for reuse, linked by next
	nfree  int                  // claims on free, at most keyClaimsFreeMax
	gens   [keyRingSlots]keyGen // generation g lives in gens[g mod keyRingSlots]
}

// keyClaimsFreeMax bounds a shard's free list: a burst of requests in flight
// leaves at most this many claims (about 320 bytes each) per shard behind.
const keyClaimsFreeMax = 16

// keyGen is one shard's answers of one generation.
type keyGen struct {
	gen     int64    // generation number; meaningful when slots != nil
	slots   []uint64 // tag<<32 | offset; 0 is empty, tag keyTagDead a taken-back answer
	chunks  [][]byte // the arena; records never span chunks and never change once written
	used    int      // slots not empty (live and dead)
	keys    int      // live answers
	bytesOf int64    // memory charged to the budget: slots and chunk capacity
	// shared: a snapshot view (keyView) reads slots while the engine runs
	// on, so the next write to slots copies them first (ownSlots). chunks
	// need no copy: the view has its own list of them, and records are
	// only ever appended past what it reads.
	shared bool
}

// ownSlots makes g.slots g's alone before a write (see shared).
func (g *keyGen) ownSlots() {
	if g.shared {
		g.slots = slices.Clone(g.slots)
		g.shared = false
	}
}

// keyClaim is a key whose first request is in flight. The request that got
// it must end it with finish or abort, on every path, exactly once.
//
// Claims are reused (see keyShard.free), so who may hold a pointer to one
// is what makes the reuse safe:
//
//   - the shard's claims map, from begin until end, under the shard lock;
//   - its owner, the request that got keyFresh, from begin until it calls
//     end, and what the owner hands on meanwhile: the command it gives the
//     actor (c.claim) and the records made from it (their key is c.key).
//     The owner waits for the actor's answer before it ends the claim, and
//     records copy the key when they are encoded (appendRecord) and
//     remembered (the arena), so none of these outlives the claim;
//   - the shard's free list, once ended.
//
// Duplicates waiting for the claim hold no pointer to it: they look the key
// up in the map again after every wake-up, under the lock. So once end has
// taken a claim out of the map nothing but the free list reaches it, and
// the next begin may overwrite its key. open asserts the owner's part: end
// panics on a claim already ended, begin on reusing one still open, and
// recordKey on a claim used after its end.
type keyClaim struct {
	key   string // aliases buf[:n]: valid until the claim ends
	tag   uint32
	open  bool // from begin until end
	shard *keyShard
	next  *keyClaim // on the shard's free list
	buf   [KeyBytesMax]byte
	// Set by remember while the claim is open: where its answer went, so
	// that abort can take it back.
	answered    bool
	answeredGen int64
	answeredOff uint32
}

type keyOutcome uint8

const (
	keyFresh    keyOutcome = iota // the caller owns the claim and must finish or abort it
	keyReplay                     // a durable answer exists: send it again
	keyMismatch                   // the key was used with a different request
	keyFull                       // the key budget is used up: a new key is refused
	keyInvalid                    // the key is longer than KeyBytesMax
)

// keyAnswerKind is what a remembered answer was.
type keyAnswerKind uint8

const (
	keyHoldCreated keyAnswerKind = iota + 1 // 201 hold
	keyHoldRefused                          // 409 insufficient stock
	keyPayment                              // webhook 200 or 202
)

// keyAnswer is a remembered answer, decoded. The fields used depend on kind.
type keyAnswer struct {
	kind keyAnswerKind
	fp   uint64 // the request's fingerprint (derived for keyHoldCreated)
	// keyHoldCreated
	productID, seq uint64
	secret         [16]byte
	qty            int64
	expiresNanos   int64
	// keyHoldRefused
	available int64
	// keyPayment
	orderID         uint64
	status          OrderStatus
	queued, applied bool
}

func holdCreatedAnswer(productID, seq uint64, secret [16]byte, qty, expiresNanos int64) keyAnswer {
	return keyAnswer{kind: keyHoldCreated, fp: holdFingerprint(productID, qty), productID: productID, seq: seq,
		secret: secret, qty: qty, expiresNanos: expiresNanos}
}

func holdRefusedAnswer(fp uint64, available int64) keyAnswer {
	return keyAnswer{kind: keyHoldRefused, fp: fp, available: available}
}

func paymentAnswer(fp uint64, r *PaymentReply) keyAnswer {
	return keyAnswer{kind: keyPayment, fp: fp, orderID: r.OrderID, status: r.Status, queued: r.Queued, applied: r.Applied}
}

// holdReply is the answer as CreateHold first gave it.
func (a *keyAnswer) holdReply() HoldReply {
	if a.kind == keyHoldRefused {
		return HoldReply{Code: CodeInsufficientStock, Available: a.available}
	}
	tok := HoldToken{ProductID: a.productID, Seq: a.seq, Secret: a.secret}
	return HoldReply{Code: OK, Hold: Hold{Token: tok, ProductID: a.productID, Qty: a.qty,
		ExpiresAt: nanosTime(a.expiresNanos), Status: HoldActive}}
}

// paymentReply is the answer as ApplyPayment first gave it.
func (a *keyAnswer) paymentReply() PaymentReply {
	return PaymentReply{Code: OK, OrderID: a.orderID, Queued: a.queued, Status: a.status, Applied: a.applied}
}

// appendKeyRecord encodes key and a as an arena record: kind, key length,
// key, then the answer's numbers; the hold expiry as a signed offset from
// baseNanos (its generation's start), which keeps it to a few bytes.
func appendKeyRecord(dst []byte, key string, a *keyAnswer, baseNanos int64) []byte {
	dst = append(dst, byte(a.kind), byte(len(key)))
	dst = append(dst, key...)
	switch a.kind {
	case keyHoldCreated:
		dst = binary.AppendUvarint(dst, a.productID)
		dst = binary.AppendUvarint(dst, a.seq)
		dst = append(dst, a.secret[:]...)
		dst = binary.AppendVarint(dst, a.qty)
		dst = binary.AppendVarint(dst, a.expiresNanos-baseNanos)
	case keyHoldRefused:
		dst = binary.LittleEndian.AppendUint64(dst, a.fp)
		dst = binary.AppendVarint(dst, a.available)
	case keyPayment:
		dst = binary.LittleEndian.AppendUint64(dst, a.fp)
		dst = binary.AppendUvarint(dst, a.orderID)
		flags := byte(a.status) << 2
		if a.queued {
			flags |= 1
		}
		if a.applied {
			flags |= 2
		}
		dst = append(dst, flags)
	default:
		panic(fmt.Sprintf("engine: key answer of kind %d", a.kind))
	}
	return dst
}

// decodeKeyRecord decodes an arena record written by appendKeyRecord. The
// arena is the engine's own memory, so a malformed record is a bug.
func decodeKeyRecord(rec []byte, baseNanos int64) (key []byte, a keyAnswer) {
	a.kind = keyAnswerKind(rec[0])
	n := int(rec[1])
	key = rec[2 : 2+n]
	p := rec[2+n:]
	uv := func() uint64 {
		v, k := binary.Uvarint(p)
		p = p[k:]
		return v
	}
	sv := func() int64 {
		v, k := binary.Varint(p)
		p = p[k:]
		return v
	}
	switch a.kind {
	case keyHoldCreated:
		a.productID = uv()
		a.seq = uv()
		copy(a.secret[:], p[:16])
		p = p[16:]
		a.qty = sv()
		a.expiresNanos = baseNanos + sv()
		a.fp = holdFingerprint(a.productID, a.qty)
	case keyHoldRefused:
		a.fp = binary.LittleEndian.Uint64(p)
		p = p[8:]
		a.available = sv()
	case keyPayment:
		a.fp = binary.LittleEndian.Uint64(p)
		p = p[8:]
		a.orderID = uv()
		flags := p[0]
		a.queued, a.applied, a.status = flags&1 != 0, flags&2 != 0, OrderStatus(flags>>2)
	default:
		panic(fmt.Sprintf("engine: key record of kind %d", a.kind))
	}
	return key, a
}

// keyBudget is the memory both key tables may use, and its gauges.
type keyBudget struct {
	maxBytes    int64
	warnBytes   int64 // 80 % of maxBytes
	keys, bytes *atomic.Int64
	refused     *atomic.Int64
	warned      atomic.Bool // set on crossing warnBytes upward, cleared below it
	onWarn      func(usedBytes, maxBytes int64)
}

func newKeyBudget(maxBytes int64, s *Stats, onWarn func(usedBytes, maxBytes int64)) *keyBudget {
	return &keyBudget{maxBytes: maxBytes, warnBytes: maxBytes / 10 * 8, keys: &s.IdempotencyKeys,
		bytes: &s.IdempotencyKeyBytes, refused: &s.IdempotencyKeysRefused, onWarn: onWarn}
}

// charge adds to the gauges and calls the warning hook once per upward
// crossing of 80 % of the budget. Call it without a shard lock held.
func (b *keyBudget) charge(bytes, keys int64) {
	if keys != 0 {
		b.keys.Add(keys)
	}
	if bytes == 0 {
		return
	}
	used := b.bytes.Add(bytes)
	if used < b.warnBytes {
		if b.warned.Load() {
			b.warned.Store(false)
		}
		return
	}
	if bytes > 0 && !b.warned.Swap(true) && b.onWarn != nil {
		b.onWarn(used, b.maxBytes)
	}
}

func (b *keyBudget) full() bool { return b.bytes.Load() >= b.maxBytes }

func newKeyTable(ttlNanos int64, budget *keyBudget) *keyTable {
	t := &keyTable{ttlNanos: ttlNanos, spanNanos: (ttlNanos + keyGenerations - 1) / keyGenerations, budget: budget}
	for i := range t.shards {
		t.shards[i].cond.L = &t.shards[i].mu
	}
	return t
}

// locate returns key's shard and index tag. Tags are at least 2 (see keyTagDead).
func (t *keyTable) locate(key []byte) (*keyShard, uint32) {
	h := maphash.Bytes(keyHashSeed, key)
	tag := uint32(h >> 32)
	if tag < 2 {
		tag += 2
	}
	return &t.shards[h%keyShardCount], tag
}

// bytesOf views s as bytes without copying, for lookups only: the bytes
// must never be written or kept.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// genOf is the generation of an answer given at atNanos.
func (t *keyTable) genOf(atNanos int64) int64 {
	g := atNanos / t.spanNanos
	if atNanos%t.spanNanos < 0 {
		g--
	}
	return g
}

// live reports whether generation gen may hold an answer younger than the
// TTL at nowNanos, that is whether lookups at nowNanos see it.
func (t *keyTable) live(gen, nowNanos int64) bool {
	return (gen+1)*t.spanNanos > nowNanos-t.ttlNanos
}

func ringSlot(gen int64) int {
	i := int(gen % keyRingSlots)
	if i < 0 {
		i += keyRingSlots
	}
	return i
}

// find returns the slot of key's live answer in g, or the empty slot where
// it would go.
func (g *keyGen) find(key []byte, tag uint32) (slot int, off uint32, found bool) {
	n := len(g.slots)
	i := int((uint64(tag) * uint64(n)) >> 32)
	for {
		s := g.slots[i]
		if s == 0 {
			return i, 0, false
		}
		if uint32(s>>32) == tag {
			off = uint32(s)
			if string(g.keyAt(off)) == string(key) {
				return i, off, true
			}
		}
		if i++; i == n {
			i = 0
		}
	}
}

func (g *keyGen) record(off uint32) []byte {
	return g.chunks[off>>keyChunkShift][off&(keyChunkBytesMax-1):]
}

func (g *keyGen) keyAt(off uint32) []byte {
	rec := g.record(off)
	return rec[2 : 2+int(rec[1])]
}

// lookupLocked finds key's answer among the generations live at nowNanos.
func (t *keyTable) lookupLocked(s *keyShard, key []byte, tag uint32, nowNanos int64) (keyAnswer, bool) {
	for i := range s.gens {
		g := &s.gens[i]
		if g.slots == nil || !t.live(g.gen, nowNanos) {
			continue
		}
		if _, off, ok := g.find(key, tag); ok {
			_, a := decodeKeyRecord(g.record(off), g.gen*t.spanNanos)
			return a, true
		}
	}
	return keyAnswer{}, false
}

// begin claims key for a request with fingerprint fp, at nowNanos.
// Concurrent deliveries of one key are serialised here: the first gets
// keyFresh and the claim, the others wait until its claim ends and then get
// keyReplay with the answer, or keyMismatch if they differ from it.
func (t *keyTable) begin(key []byte, fp uint64, nowNanos int64) (*keyClaim, keyAnswer, keyOutcome) {
	if len(key) > KeyBytesMax {
		return nil, keyAnswer{}, keyInvalid
	}
	s, tag := t.locate(key)
	s.mu.Lock()
	// Wait for the first request's answer even when this one differs: a
	// 422 must not reveal a request that may yet be aborted, nor one whose
	// effect is not yet visible (linearizability).
	for s.claims[string(key)] != nil { // no pointer is kept across the wait: see keyClaim
		s.cond.Wait()
	}
	if a, ok := t.lookupLocked(s, key, tag, nowNanos); ok { // a replay allocates nothing
		s.mu.Unlock()
		if a.fp != fp {
			return nil, a, keyMismatch
		}
		return nil, a, keyReplay
	}
	if t.budget.full() {
		s.mu.Unlock()
		t.budget.refused.Add(1)
		return nil, keyAnswer{}, keyFull
	}
	c := s.newClaim(key, tag)
	if s.claims == nil {
		s.claims = make(map[string]*keyClaim)
	}
	s.claims[c.key] = c
	s.mu.Unlock()
	return c, keyAnswer{}, keyFresh
}

// newClaim returns an open claim of key: an ended one from the free list,
// or a new one. The key is copied into the claim's own buffer, so the
// caller's may be reused at once. The caller holds s.mu.
func (s *keyShard) newClaim(key []byte, tag uint32) *keyClaim {
	c := s.free
	if c != nil {
		if c.open {
			panic("engine: an open idempotency key claim was on the free list")
		}
		s.free, c.next = c.next, nil
		s.nfree--
	} else {
		c = &keyClaim{shard: s}
	}
	n := copy(c.buf[:], key)
	c.key = unsafe.String(&c.buf[0], n)
	c.tag, c.open = tag, true
	c.answered, c.answeredGen, c.answeredOff = false, 0, 0
	return c
}

// release ends c: out of the map, waiters woken, c kept for reuse. The
// caller holds s.mu.
func (s *keyShard) release(c *keyClaim) {
	if !c.open {
		panic("engine: an idempotency key claim ended twice")
	}
	delete(s.claims, c.key)
	c.open = false
	s.cond.Broadcast()
	if s.nfree < keyClaimsFreeMax {
		c.next, s.free = s.free, c
		s.nfree++
	}
}

// recordKey is c's key for the records its request makes. The string
// aliases c's buffer: records copy it (see keyClaim), never keep it.
func (c *keyClaim) recordKey() string {
	if !c.open {
		panic("engine: an idempotency key claim used after its end")
	}
	return c.key
}

// end finishes the claim when its answer is durable (it is remembered)
// and aborts it otherwise (a retry runs afresh).
func (t *keyTable) end(c *keyClaim, durable bool) {
	if durable {
		t.finish(c)
	} else {
		t.abort(c)
	}
}

// refusal is the Code that refuses a request whose key lookup ended with
// o, or OK when the request goes on (claimed, or replayed).
func (o keyOutcome) refusal() Code {
	switch o {
	case keyMismatch:
		return CodeKeyReused
	case keyFull:
		return CodeKeyTableFull
	case keyInvalid:
		return CodeInvalidArgument
	}
	return OK
}

// finish ends c once its answer is durable: later deliveries replay it.
func (t *keyTable) finish(c *keyClaim) {
	s := c.shard
	s.mu.Lock()
	s.release(c)
	s.mu.Unlock()
}

// abort ends c without an answer: its request changed nothing durable, so a
// retry must run afresh. An answer remembered meanwhile (by a record that
// did not become durable) is taken back.
func (t *keyTable) abort(c *keyClaim) {
	s := c.shard
	var keys int64
	s.mu.Lock()
	if c.answered {
		g := &s.gens[ringSlot(c.answeredGen)]
		if g.slots != nil && g.gen == c.answeredGen {
			if i, off, ok := g.find(bytesOf(c.key), c.tag); ok && off == c.answeredOff {
				g.ownSlots()
				g.slots[i] = keyTagDead<<32 | uint64(off)
				g.keys--
				keys = -1
			}
		}
	}
	s.release(c)
	s.mu.Unlock()
	t.budget.charge(0, keys)
}

// remember stores key's answer given at atNanos, from the apply code (live
// and replay alike, so both build the same table). A key that already has
// an answer live at atNanos keeps its first one. Remembering never fails
// for the budget: the record is already logged; only new claims are refused.
func (t *keyTable) remember(key string, atNanos int64, a keyAnswer) {
	if len(key) == 0 || len(key) > KeyBytesMax {
		panic(fmt.Sprintf("engine: idempotency key of %d bytes", len(key)))
	}
	kb := bytesOf(key)
	s, tag := t.locate(kb)
	s.mu.Lock()
	if _, ok := t.lookupLocked(s, kb, tag, atNanos); ok {
		s.mu.Unlock()
		return
	}
	gen := t.genOf(atNanos)
	g := &s.gens[ringSlot(gen)]
	var bytes, keys int64
	if g.slots != nil && g.gen != gen {
		if g.gen > gen {
			// A generation keyRingSlots newer already took the slot: this
			// answer would not be live at any time from now on.
			s.mu.Unlock()
			return
		}
		// An older generation, long dead (see keyRingSlots): drop it.
		bytes, keys = -g.bytesOf, -int64(g.keys)
		*g = keyGen{}
	}
	if g.slots == nil {
		g.gen = gen
	}
	var buf [2*KeyBytesMax + 64]byte
	rec := appendKeyRecord(buf[:0], key, &a, gen*t.spanNanos)
	before := g.bytesOf
	off := g.insert(kb, tag, rec)
	bytes += g.bytesOf - before
	keys++
	if c := s.claims[key]; c != nil && !c.answered {
		c.answered, c.answeredGen, c.answeredOff = true, gen, off
	}
	s.mu.Unlock()
	t.budget.charge(bytes, keys)
}

// insert adds rec (key's record, which g does not hold live) and returns
// its offset.
func (g *keyGen) insert(key []byte, tag uint32, rec []byte) uint32 {
	if (g.used+1)*4 > len(g.slots)*3 {
		g.grow() // new slots, g's alone
	} else {
		g.ownSlots()
	}
	var last []byte
	if n := len(g.chunks); n > 0 {
		last = g.chunks[n-1]
	}
	if last == nil || len(last)+len(rec) > cap(last) {
		size := keyChunkBytesMin
		if last != nil {
			size = min(2*cap(last), keyChunkBytesMax)
		}
		if len(g.chunks) == keyChunksMax {
			panic("engine: an idempotency key generation outgrew its 4 GiB arena")
		}
		last = make([]byte, 0, size)
		g.chunks = append(g.chunks, last)
		g.bytesOf += int64(size)
	}
	off := uint32(len(g.chunks)-1)<<keyChunkShift | uint32(len(last))
	g.chunks[len(g.chunks)-1] = append(last, rec...)
	i, _, _ := g.find(key, tag)
	g.slots[i] = uint64(tag)<<32 | uint64(off)
	g.used++
	g.keys++
	return off
}

// grow doubles the index (dropping dead slots); only the index is touched,
// never the arena, so the pause is a few hundred microseconds at most.
func (g *keyGen) grow() {
	n := max(keyIndexSlotsMin, 2*len(g.slots))
	old := g.slots
	g.slots = make([]uint64, n)
	g.shared = false
	g.bytesOf += int64(keySlotBytes * (n - len(old)))
	g.used = 0
	for _, s := range old {
		tag := uint32(s >> 32)
		if tag < 2 {
			continue // empty or dead
		}
		i := int((uint64(tag) * uint64(n)) >> 32)
		for g.slots[i] != 0 {
			if i++; i == n {
				i = 0
			}
		}
		g.slots[i] = s
		g.used++
	}
}

// sweep drops the generations no lookup at nowNanos sees, whole: per
// shard, a few pointer writes under its lock. It returns the answers dropped.
func (t *keyTable) sweep(nowNanos int64) (dropped int) {
	var bytes int64
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for j := range s.gens {
			g := &s.gens[j]
			if g.slots != nil && !t.live(g.gen, nowNanos) {
				dropped += g.keys
				bytes += g.bytesOf
				*g = keyGen{}
			}
		}
		s.mu.Unlock()
	}
	t.budget.charge(-bytes, int64(-dropped))
	return dropped
}

// keyRef names one remembered answer, for snapshots and dumps.
type keyRef struct {
	gen    int64
	chunks [][]byte // the generation's arena when collected; records never change
	off    uint32
}

func (r *keyRef) record() []byte {
	return r.chunks[r.off>>keyChunkShift][r.off&(keyChunkBytesMax-1):]
}

func (r *keyRef) key() []byte {
	rec := r.record()
	return rec[2 : 2+int(rec[1])]
}

// collect returns the live answers of the generations live at nowNanos.
func (t *keyTable) collect(nowNanos int64) []keyRef {
	var refs []keyRef
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for j := range s.gens {
			g := &s.gens[j]
			if g.slots == nil || !t.live(g.gen, nowNanos) {
				continue
			}
			for _, sl := range g.slots {
				if uint32(sl>>32) >= 2 {
					refs = append(refs, keyRef{gen: g.gen, chunks: g.chunks, off: uint32(sl)})
				}
			}
		}
		s.mu.Unlock()
	}
	return refs
}

// keyView is a keyTable's answers as of one instant, readable while the
// table goes on changing: per shard and live generation, the generation's
// index slots (shared copy-on-write, see keyGen.shared) and its list of
// arena chunks. Taking it costs a copy of the chunk lists (about one
// pointer per 16 KiB of answers), not of the answers or their index.
type keyView struct {
	spanNanos int64
	gens      []keyGenView
}

type keyGenView struct {
	gen    int64
	slots  []uint64
	chunks [][]byte
}

func (v *keyGenView) record(off uint32) []byte {
	return v.chunks[off>>keyChunkShift][off&(keyChunkBytesMax-1):]
}

// view returns the answers of the generations live at nowNanos, as
// collect does, without copying them.
func (t *keyTable) view(nowNanos int64) keyView {
	v := keyView{spanNanos: t.spanNanos}
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for j := range s.gens {
			g := &s.gens[j]
			if g.slots == nil || !t.live(g.gen, nowNanos) || g.keys == 0 {
				continue
			}
			g.shared = true
			v.gens = append(v.gens, keyGenView{gen: g.gen, slots: g.slots, chunks: slices.Clone(g.chunks)})
		}
		s.mu.Unlock()
	}
	return v
}

// Fingerprints identify a request's meaning, so that "the same body" means
// the same fields whatever their order or spacing. FNV-1a, 64 bits: stable
// across restarts, which replay and snapshots need.
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
