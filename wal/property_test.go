package wal

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"testing"
)

// damageLog applies one random kind of damage at a random place in the
// single segment at path and returns the lowest byte offset it touched.
func damageLog(rng *rand.Rand, path string, t *testing.T) int {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := rng.IntN(len(data))
	switch rng.IntN(5) {
	case 0: // flip one bit
		data[at] ^= 1 << rng.IntN(8)
	case 1: // cut the file
		data = data[:at]
	case 2: // zero a range, maybe past the end
		end := min(at+1+rng.IntN(300), len(data))
		clear(data[at:end])
		data = append(data, make([]byte, rng.IntN(2)*rng.IntN(1000))...)
	case 3: // garbage over a range
		for i := at; i < min(at+1+rng.IntN(100), len(data)); i++ {
			data[i] = byte(rng.Uint32())
		}
	case 4: // garbage appended
		at = len(data)
		for range 1 + rng.IntN(500) {
			data = append(data, byte(rng.Uint32()))
		}
	}
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	return at
}

// TestRandomDamageNeverSkipsRecords checks the promise behind recovery on
// random damage: Open either refuses with a *CorruptError or replays a
// prefix of what was written, never a sequence with a hole; and damage
// that starts inside the last record, or after it, always opens and keeps
// every record before that.
func TestRandomDamageNeverSkipsRecords(t *testing.T) {
	base, recs := fixture(t, layouts[0])
	offs := entryOffsets(t, lastSegment(t, base))
	lastStart := offs[len(offs)-1]
	rng := rand.New(rand.NewPCG(5, 6))
	refused, opened := 0, 0
	defer func() { t.Logf("%d refused, %d opened", refused, opened) }()
	for iter := range 400 {
		dir := copyDir(t, base)
		at := damageLog(rng, lastSegment(t, dir), t)
		for _, truncate := range []bool{false, true} {
			l, err := Open(dir, Options{TruncateCorrupt: truncate})
			var ce *CorruptError
			if errors.As(err, &ce) && !truncate {
				if at >= lastStart {
					t.Fatalf("iteration %d: damage at byte %d, inside or after the last record, refused: %v", iter, at, err)
				}
				refused++
				continue
			}
			if err != nil {
				t.Fatalf("iteration %d: Open: %v", iter, err)
			}
			got := replayAll(t, l)
			l.Close()
			opened++
			if len(got) > len(recs) {
				t.Fatalf("iteration %d: replayed %d records of %d", iter, len(got), len(recs))
			}
			for i := range got {
				if !bytes.Equal(got[i], recs[i]) {
					t.Fatalf("iteration %d: record %d is %q, want %q: not a prefix", iter, i, got[i], recs[i])
				}
			}
			if at >= lastStart && len(got) < len(recs)-1 {
				t.Fatalf("iteration %d: damage at byte %d lost %d records before the last", iter, at, len(recs)-1-len(got))
			}
		}
	}
}
