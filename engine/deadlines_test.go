package engine

import (
	"slices"
	"testing"

	"pgregory.net/rapid"
)

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
