package transport

import (
	"encoding/binary"
	"hash/maphash"
	"sync"
)

// A signature is good for one delivery (docs/API.md): the same signed
// webhook presented again under another Idempotency-Key while its t is
// still within signatureTolerance is 401 signature_replayed; under the same
// key it is the ordinary idempotent replay, answered by the engine.
//
// signatureTable remembers the signatures seen, each as the first 128 bits
// of the HMAC the server computed for it (HMAC of "<t>.<body>": a header
// rewritten around the same t and body, with spaces or extra entries, is
// the same signature), with a keyed 64-bit hash of its Idempotency-Key and
// its t. It is a fixed-size, set-associative table: the digest picks a
// shard (a mutex) and two sets of signatureSetWays slots in it, and an
// entry goes into the emptier set. A slot whose t is out of the tolerance
// window is free, so entries expire with the window by themselves, with no
// sweep and no allocation after a shard's first use.
//
// Full: when both sets of a new signature hold only live entries, the
// webhook is refused with 503 overloaded and Retry-After, and nothing is
// recorded: the table never forgets a live signature to make room (that
// would let its replay through). Only valid signatures reach the table, so
// only the provider's own traffic (or replays of many distinct captured
// deliveries) can fill it; at signatureSeenSlots = 2^20 that is about
// 2,900 signed webhooks a second sustained (an entry lives 5 minutes past
// its t): the first refusal comes at about 85 % of the slots
// (TestSignatureTableFillsBeforeRefusing). 32 bytes a slot: 32 MiB in all,
// each of the 64 shards allocated on its first use.
const (
	signatureSeenSlots = 1 << 20
	signatureShards    = 64
	signatureSetWays   = 16
)

// signatureSeen is one remembered signature, apart from its tag.
type signatureSeen struct {
	digest [2]uint64 // the first 128 bits of the computed HMAC
	key    uint64    // maphash of the Idempotency-Key under the table's seed
}

// A slot's tag is its signature's t (unix seconds, 32 bits: until 2106) in
// the high half and 32 bits of its digest in the low half; 0 marks a slot
// never used. The tags of a set are contiguous (two cache lines), so that a
// check reads the full entries only of the slots whose tag matches.
func signatureTag(t int64, d1 uint64) uint64 { return uint64(uint32(t))<<32 | d1&0xffff_ffff }

type signatureShard struct {
	mu      sync.Mutex
	tags    []uint64        // made on first use: a server that sees few webhooks pays little
	entries []signatureSeen // same index as tags
	_       [8]byte         // keeps neighbouring shards' mutexes off one cache line
}

// signatureTable is safe for concurrent use.
type signatureTable struct {
	seed         maphash.Seed // random per table: keys cannot be chosen to collide
	setsPerShard uint64
	toleranceSec int64 // entries live while |now - t| <= toleranceSec
	shards       [signatureShards]signatureShard
}

// signatureVerdict is what the table says of a signature presented with a key.
type signatureVerdict uint8

const (
	signatureFirst    signatureVerdict = iota // not seen in the window: recorded now with this key
	signatureSameKey                          // seen with this very key: an idempotent retry
	signatureReplayed                         // seen with another key: refuse
	signatureFull                             // not seen, and no room to record it: refuse, retry later
)

// newSignatureTable makes a table of at least slots slots (rounded up to
// whole sets in every shard) whose entries live for toleranceSec seconds
// either side of their t.
func newSignatureTable(slots int, toleranceSec int64) *signatureTable {
	perShard := (slots + signatureShards - 1) / signatureShards
	sets := (perShard + signatureSetWays - 1) / signatureSetWays
	if sets < 2 {
		sets = 2
	}
	return &signatureTable{seed: maphash.MakeSeed(), setsPerShard: uint64(sets), toleranceSec: toleranceSec}
}

// check records the signature whose computed HMAC is mac (at least 16
// bytes), signed at t, presented with key at nowSec, unless it was seen
// within the window. The check and the record are one step under the
// shard's mutex, so of concurrent deliveries under different keys exactly
// one is first.
func (st *signatureTable) check(mac []byte, t int64, key []byte, nowSec int64) signatureVerdict {
	d0, d1 := binary.LittleEndian.Uint64(mac[0:8]), binary.LittleEndian.Uint64(mac[8:16])
	keyHash := maphash.Bytes(st.seed, key)
	sh := &st.shards[d0%signatureShards]
	// The HMAC's bits are uniform and unknown to anyone without the
	// secret, so nobody can aim entries at one set.
	a := (d0 / signatureShards) % st.setsPerShard
	b := d1 % st.setsPerShard
	if b == a {
		b = (a + 1) % st.setsPerShard
	}
	tag := signatureTag(t, d1)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.tags == nil {
		sh.tags = make([]uint64, st.setsPerShard*signatureSetWays)
		sh.entries = make([]signatureSeen, st.setsPerShard*signatureSetWays)
	}
	free, freeN := -1, 0
	for _, set := range [2]uint64{a, b} {
		base := int(set * signatureSetWays)
		n, first := 0, -1
		for i, g := range sh.tags[base : base+signatureSetWays] {
			switch {
			case !st.live(g, nowSec):
				if first < 0 {
					first = base + i
				}
				n++
			case g == tag:
				if e := &sh.entries[base+i]; e.digest == [2]uint64{d0, d1} {
					if e.key == keyHash {
						return signatureSameKey
					}
					return signatureReplayed
				}
			}
		}
		if n > freeN {
			free, freeN = first, n
		}
	}
	if free < 0 {
		return signatureFull
	}
	sh.tags[free] = tag
	sh.entries[free] = signatureSeen{digest: [2]uint64{d0, d1}, key: keyHash}
	return signatureFirst
}

// live reports whether the slot of tag holds a signature whose t is within
// the tolerance of nowSec, either way.
func (st *signatureTable) live(tag uint64, nowSec int64) bool {
	if tag == 0 {
		return false
	}
	d := int64(int32(uint32(tag>>32) - uint32(nowSec))) // 32-bit wrap-safe difference
	return d <= st.toleranceSec && -d <= st.toleranceSec
}
