package transport

import (
	"crypto/rand"
	"encoding/binary"
	mathrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWebhookSignatureReplayed: a signature is good for one delivery. The
// same X-Signature under the same key is the idempotent replay (the first
// answer again); under another key, also with the header rewritten around
// the same t and body, it is 401 signature_replayed and changes nothing; a
// fresh signature of the same body is a new delivery.
func TestWebhookSignatureReplayed(t *testing.T) {
	ts := startServer(t, func(s *serverSetup) { s.opts.WebhookSecret = []byte(testSecret) })
	id := ts.order(ts.hold(1, 1))
	body := `{"status":"success","order_id":` + id + `}`
	now := time.Now().Unix()
	sig := sign(testSecret, now, body)
	post := func(key, sig string) response {
		return ts.do("POST", "/api/payments/webhook", body, "Idempotency-Key", key, "X-Signature", sig)
	}
	first := post("evt-a", sig)
	if m := expectStatus(t, first, 200); m["applied"] != true {
		t.Fatalf("first delivery: %s", first.body)
	}
	again := post("evt-a", sig)
	expectStatus(t, again, 200)
	if string(again.body) != string(first.body) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("same signature, same key: %s (replayed %q), want %s replayed", again.body, again.header.Get("Idempotent-Replayed"), first.body)
	}
	before := ts.snapshot()
	expectError(t, post("evt-b", sig), 401, "signature_replayed", "")
	rewritten := " " + strings.ReplaceAll(sig, ",", " , ") + ",v1=00,x=y"
	expectError(t, post("evt-c", rewritten), 401, "signature_replayed", "")
	if after := ts.snapshot(); after != before {
		t.Fatalf("a replayed signature changed state:\n%s\n%s", before, after)
	}
	// The key that was refused is not burnt: a fresh signature under it is
	// an ordinary (late) delivery.
	late := post("evt-b", sign(testSecret, now-1, body))
	if m := expectStatus(t, late, 200); m["applied"] != false {
		t.Fatalf("fresh signature under a new key: %s, want applied false", late.body)
	}
	// An answer the engine does not remember (a 404) is retried with the
	// same signature and key as often as the provider likes.
	far := `{"status":"success","order_id":999999999}`
	farSig := sign(testSecret, now, far)
	for i := 0; i < 3; i++ {
		r := ts.do("POST", "/api/payments/webhook", far, "Idempotency-Key", "evt-far", "X-Signature", farSig)
		expectError(t, r, 404, "order_not_found", "")
	}
	expectError(t, ts.do("POST", "/api/payments/webhook", far, "Idempotency-Key", "evt-far-2", "X-Signature", farSig),
		401, "signature_replayed", "")
}

// TestWebhookSignatureReplayedConcurrently: one signature sent at once
// under several keys is applied once; every other delivery is 401.
func TestWebhookSignatureReplayedConcurrently(t *testing.T) {
	ts := startServer(t, func(s *serverSetup) { s.opts.WebhookSecret = []byte(testSecret) })
	id := ts.order(ts.hold(1, 1))
	body := `{"status":"success","order_id":` + id + `}`
	sig := sign(testSecret, time.Now().Unix(), body)
	const senders = 16
	statuses := make([]int, senders)
	var wg sync.WaitGroup
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := ts.tryDo("POST", "/api/payments/webhook", body, "Idempotency-Key", "k"+strconv.Itoa(i), "X-Signature", sig)
			if err != nil {
				t.Error(err)
				return
			}
			statuses[i] = r.status
		}()
	}
	wg.Wait()
	ok, refused := 0, 0
	for _, s := range statuses {
		switch s {
		case 200:
			ok++
		case 401:
			refused++
		}
	}
	if ok != 1 || refused != senders-1 {
		t.Fatalf("statuses %v: want one 200 and %d 401", statuses, senders-1)
	}
	if got := ts.eng.Stats().WebhooksApplied.Load(); got != 1 {
		t.Fatalf("applied %d times", got)
	}
}

// TestWebhookSignaturesFull: when the table of signatures seen has no room,
// a new signed webhook is 503 overloaded with Retry-After and changes
// nothing (a live signature is never forgotten to make room); known
// signatures still get their verdict.
func TestWebhookSignaturesFull(t *testing.T) {
	ts := startServer(t, func(s *serverSetup) { s.opts.WebhookSecret = []byte(testSecret) })
	id := ts.order(ts.hold(1, 1))
	body := `{"status":"success","order_id":` + id + `}`
	now := time.Now().Unix()
	known := sign(testSecret, now, body)
	expectStatus(t, ts.do("POST", "/api/payments/webhook", body, "Idempotency-Key", "known", "X-Signature", known), 200)
	fillSignatureTable(ts.srv.signatures, now)
	before := ts.snapshot()
	r := ts.do("POST", "/api/payments/webhook", body, "Idempotency-Key", "new", "X-Signature", sign(testSecret, now-2, body))
	expectError(t, r, 503, "overloaded", "")
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if after := ts.snapshot(); after != before {
		t.Fatalf("a refused webhook changed state:\n%s\n%s", before, after)
	}
	// fillSignatureTable left the known entry alone: its verdicts stand.
	expectError(t, ts.do("POST", "/api/payments/webhook", body, "Idempotency-Key", "other", "X-Signature", known),
		401, "signature_replayed", "")
	if r := ts.do("POST", "/api/payments/webhook", body, "Idempotency-Key", "known", "X-Signature", known); r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("known signature and key in a full table: %d %s, want the replay", r.status, r.body)
	}
}

// fillSignatureTable makes every free slot of st live at nowSec with a
// random digest, as a burst of distinct signed webhooks would.
func fillSignatureTable(st *signatureTable, nowSec int64) {
	for i := range st.shards {
		sh := &st.shards[i]
		sh.mu.Lock()
		if sh.tags == nil {
			sh.tags = make([]uint64, st.setsPerShard*signatureSetWays)
			sh.entries = make([]signatureSeen, st.setsPerShard*signatureSetWays)
		}
		for j := range sh.tags {
			if !st.live(sh.tags[j], nowSec) {
				sh.tags[j] = signatureTag(nowSec, uint64(j)+1)
				sh.entries[j] = signatureSeen{digest: [2]uint64{uint64(j) + 1, uint64(i) + 1}, key: 1}
			}
		}
		sh.mu.Unlock()
	}
}

func randomMAC(t *testing.T) []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSignatureTableExpiresWithTheWindow: an entry lives while its t is
// within the tolerance of the clock, either way, and its slot is free after.
func TestSignatureTableExpiresWithTheWindow(t *testing.T) {
	const tol = 300
	st := newSignatureTable(1, tol)
	mac, t0 := randomMAC(t), int64(1_800_000_000)
	if v := st.check(mac, t0, []byte("a"), t0); v != signatureFirst {
		t.Fatalf("first: %v", v)
	}
	for _, now := range []int64{t0 - tol, t0, t0 + tol} {
		if v := st.check(mac, t0, []byte("b"), now); v != signatureReplayed {
			t.Fatalf("other key at t%+d: %v, want replayed", now-t0, v)
		}
		if v := st.check(mac, t0, []byte("a"), now); v != signatureSameKey {
			t.Fatalf("same key at t%+d: %v, want same key", now-t0, v)
		}
	}
	// Past the window the entry is gone: a full table has room again.
	fillSignatureTable(st, t0)
	if v := st.check(randomMAC(t), t0, []byte("c"), t0); v != signatureFull {
		t.Fatalf("filled table: %v, want full", v)
	}
	if v := st.check(mac, t0, []byte("b"), t0+tol+1); v != signatureFirst {
		t.Fatalf("after the window: %v, want first", v)
	}
	if v := st.check(randomMAC(t), t0+tol+1, []byte("d"), t0+tol+1); v != signatureFirst {
		t.Fatalf("a filled table after the window: %v, want room", v)
	}
}

// TestSignatureTableFillsBeforeRefusing: the table refuses only when it is
// nearly full: with random digests (what HMACs are), the first refusal
// comes after at least 80 % of signatureSeenSlots are in use, and the
// table never holds more than its slots.
func TestSignatureTableFillsBeforeRefusing(t *testing.T) {
	if raceEnabled {
		t.Skip("a million checks: too slow under the race detector; the property does not depend on it")
	}
	st := newSignatureTable(signatureSeenSlots, 300)
	const now = 1_800_000_000
	key := []byte("k")
	rng := mathrand.New(mathrand.NewPCG(1, 2))
	var mac [16]byte
	n := 0
	for ; n <= signatureSeenSlots; n++ {
		binary.LittleEndian.PutUint64(mac[0:], rng.Uint64())
		binary.LittleEndian.PutUint64(mac[8:], rng.Uint64())
		if v := st.check(mac[:], now, key, now); v == signatureFull {
			break
		}
	}
	if n < signatureSeenSlots*80/100 || n > signatureSeenSlots {
		t.Fatalf("first refusal after %d of %d slots", n, signatureSeenSlots)
	}
	t.Logf("first refusal after %d of %d slots (%.1f %%)", n, signatureSeenSlots, 100*float64(n)/signatureSeenSlots)
}

// BenchmarkSignatureTable is one check of a new signature in a table at
// steady state (half full).
func BenchmarkSignatureTable(b *testing.B) {
	st := newSignatureTable(signatureSeenSlots, 300)
	const now = 1_800_000_000
	rng := mathrand.New(mathrand.NewPCG(1, 2))
	var mac [16]byte
	next := func() []byte {
		binary.LittleEndian.PutUint64(mac[0:], rng.Uint64())
		binary.LittleEndian.PutUint64(mac[8:], rng.Uint64())
		return mac[:]
	}
	for range signatureSeenSlots / 2 {
		st.check(next(), now, []byte("k"), now)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Entries of an older t: they expire as the clock moves, so the
		// table stays about half full.
		st.check(next(), now-300+int64(i%600), []byte("k"), now)
	}
}
