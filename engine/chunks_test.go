package engine

import (
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// holdLog against a plain slice: adds, lookups and forgetting, across
// chunk boundaries (runs of thousands of holds).
func TestHoldLogMatchesASlice(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var l holdLog
		l.firstSeq = 1
		var model []holdState
		modelFirst := uint64(1)
		steps := rapid.IntRange(1, 10).Draw(t, "steps")
		now := int64(0)
		for range steps {
			switch rapid.IntRange(0, 2).Draw(t, "op") {
			case 0, 1: // add a run of holds, some finished at once
				n := rapid.IntRange(1, holdChunkLen+holdChunkLen/2).Draw(t, "adds")
				finished := rapid.Float64Range(0, 1).Draw(t, "finished")
				for i := range n {
					now++
					h := holdState{qty: int64(i%7 + 1), expiresNanos: now, status: HoldActive}
					h.secret[0] = byte(now)
					if float64(i%100)/100 < finished {
						h.status = HoldExpired
					}
					seq := l.nextSeq()
					l.add(seq, h)
					model = append(model, h)
				}
			case 2: // forget what is finished and older than a cutoff
				cutoff := rapid.Int64Range(0, now+1).Draw(t, "cutoff")
				l.forgetBefore(cutoff)
				for len(model) > 0 && model[0].status != HoldActive && model[0].expiresNanos < cutoff {
					model = model[1:]
					modelFirst++
				}
			}
			if l.firstSeq != modelFirst || l.nextSeq() != modelFirst+uint64(len(model)) {
				t.Fatalf("kept %d..%d, want %d..%d", l.firstSeq, l.nextSeq(), modelFirst, modelFirst+uint64(len(model)))
			}
			if len(l.chunks) > l.count/holdChunkLen+2 {
				t.Fatalf("%d chunks for %d holds", len(l.chunks), l.count)
			}
			var got []holdState
			l.each(0, func(seq uint64, h *holdState) bool {
				if *l.at(seq) != *h {
					t.Fatalf("at(%d) differs from each", seq)
				}
				got = append(got, *h)
				return true
			})
			if !slices.Equal(got, model) {
				t.Fatalf("holds differ from the model (%d vs %d)", len(got), len(model))
			}
		}
	})
}

// deadlineHeap pops in time order whatever was pushed, across chunk
// boundaries, and gives its chunks back as it shrinks.
func TestDeadlineHeapPopsInOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var h deadlineHeap
		var model []int64
		for range rapid.IntRange(1, 6).Draw(t, "rounds") {
			pushes := rapid.IntRange(0, deadlineChunkLen+deadlineChunkLen/4).Draw(t, "pushes")
			for i := range pushes {
				at := rapid.Int64Range(0, 1<<20).Draw(t, "at")
				h.push(deadline{atNanos: at, holdSeq: uint64(i)})
				model = append(model, at)
			}
			slices.Sort(model)
			pops := rapid.IntRange(0, len(model)).Draw(t, "pops")
			for i := range pops {
				if got := h.pop().atNanos; got != model[i] {
					t.Fatalf("pop %d = %d, want %d", i, got, model[i])
				}
			}
			model = model[pops:]
			if h.len() != len(model) {
				t.Fatalf("len %d, want %d", h.len(), len(model))
			}
			if want := (h.len() + deadlineChunkLen - 1) / deadlineChunkLen; len(h.chunks) != want {
				t.Fatalf("%d chunks for %d entries, want %d", len(h.chunks), h.len(), want)
			}
		}
	})
}
