package engine

import "testing"

// TestHoldLogChunks drives a holdLog across several chunks against a plain
// slice: appends, writes, and forgetting prefixes that end inside a chunk,
// on a chunk boundary and past whole chunks; a view taken halfway keeps
// what it saw while the log is written on (copy-on-write).
func TestHoldLogChunks(t *testing.T) {
	var l holdLog
	l.firstSeq = 1
	var model []holdState // model[i] is hold firstSeq+i
	first := uint64(1)
	check := func(what string) {
		t.Helper()
		if l.firstSeq != first || l.n != len(model) || l.nextSeq() != first+uint64(len(model)) {
			t.Fatalf("%s: first %d n %d, want %d %d", what, l.firstSeq, l.n, first, len(model))
		}
		i := 0
		l.each(func(seq uint64, h *holdState) {
			if seq != first+uint64(i) || *h != model[i] || *l.at(seq) != model[i] {
				t.Fatalf("%s: hold %d is %+v, want %+v", what, seq, *h, model[i])
			}
			i++
		})
		if i != len(model) {
			t.Fatalf("%s: each visited %d holds, want %d", what, i, len(model))
		}
	}
	add := func(n int, expires int64) {
		for range n {
			h := holdState{qty: int64(l.nextSeq()), expiresNanos: expires, status: HoldActive}
			l.add(l.nextSeq(), h)
			model = append(model, h)
		}
	}
	finish := func(upTo uint64) { // holds before upTo become expired
		for seq := first; seq < upTo; seq++ {
			l.mut(seq).status = HoldExpired
			model[seq-first].status = HoldExpired
		}
	}
	forget := func(cutoff int64) {
		l.forgetBefore(cutoff)
		for len(model) > 0 && model[0].status != HoldActive && model[0].expiresNanos < cutoff {
			model = model[1:]
			first++
		}
	}
	add(1500, 10)
	check("1500 holds")
	finish(700)
	forget(100) // ends inside chunk 0
	check("forgot 699")
	view := l.view(100)
	seen := append([]holdState(nil), model...)
	viewFirst := first
	add(2000, 20)
	finish(1024 + 1)
	forget(100) // ends on the chunk boundary
	check("forgot to 1025")
	if len(l.chunks) != 3 || l.skip != 0 {
		t.Fatalf("%d chunks, skip %d after forgetting chunk 0 whole, want 3 and 0", len(l.chunks), l.skip)
	}
	finish(3000)
	forget(100) // past whole chunks
	check("forgot to 3000")
	i := 0
	view.each(func(seq uint64, h *holdState) {
		if seq != viewFirst+uint64(i) || *h != seen[i] {
			t.Fatalf("the view's hold %d became %+v, want %+v", seq, *h, seen[i])
		}
		i++
	})
	if i != len(seen) {
		t.Fatalf("the view has %d holds, want %d", i, len(seen))
	}
	if _, ok := l.get(HoldToken{Seq: 2999}); ok {
		t.Fatal("a forgotten hold is found")
	}
}
