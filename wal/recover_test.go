package wal

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// layout is a test log shape: how many records, and how they fall into
// segments.
type layout struct {
	name    string
	records int
	opts    Options
}

var layouts = []layout{
	{"one segment", 20, Options{}},
	// Five entries fill a segment exactly, so the 21st record sits alone
	// in the fifth segment.
	{"five segments", 21, Options{SegmentBytes: 5 * testEntryBytes}},
}

// fixture writes a layout's log once and returns its directory and records.
func fixture(t *testing.T, lay layout) (string, [][]byte) {
	t.Helper()
	dir := t.TempDir()
	recs := testRecords(0, lay.records)
	writeLog(t, dir, lay.opts, recs)
	return dir, recs
}

// lastEntry returns the last segment of dir, its size, and the offset of
// its last entry.
func lastEntry(t *testing.T, dir string) (path string, size, start int) {
	t.Helper()
	path = lastSegment(t, dir)
	offs := entryOffsets(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, int(fi.Size()), offs[len(offs)-1]
}

// expectOpens opens dir, checks it replays exactly want and LastIndex
// agrees, checks a new record can be appended after the repaired end, and
// returns what Open reported.
func expectOpens(t *testing.T, dir string, opts Options, want [][]byte) Recovery {
	t.Helper()
	l := mustOpen(t, dir, opts)
	assertRecords(t, replayAll(t, l), want)
	if l.LastIndex() != uint64(len(want)) {
		t.Fatalf("LastIndex %d, want %d", l.LastIndex(), len(want))
	}
	rec := l.Recovery()
	l.Start()
	extra := testRecord(1000)
	if err := submitWait(l, [][]byte{extra}); err != nil {
		t.Fatalf("append after recovery: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	assertRecords(t, reopenRecords(t, dir, opts), append(want[:len(want):len(want)], extra))
	return rec
}

// expectCorrupt opens dir expecting a *CorruptError at segment and index.
func expectCorrupt(t *testing.T, dir string, opts Options, segment string, index uint64) *CorruptError {
	t.Helper()
	l, err := Open(dir, opts)
	if err == nil {
		l.Close()
		t.Fatalf("Open succeeded on a log damaged in the middle at index %d", index)
	}
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("Open: %v, want *CorruptError", err)
	}
	if ce.Segment != segment || ce.Index != index {
		t.Fatalf("CorruptError names segment %s index %d, want %s index %d (%v)", ce.Segment, ce.Index, segment, index, err)
	}
	if !strings.Contains(err.Error(), "--wal-truncate-corrupt") {
		t.Fatalf("error does not tell the operator about --wal-truncate-corrupt: %v", err)
	}
	return ce
}

func TestTornTailAtEveryOffset(t *testing.T) {
	for _, lay := range layouts {
		t.Run(lay.name, func(t *testing.T) {
			base, recs := fixture(t, lay)
			_, size, start := lastEntry(t, base)
			for cut := start; cut < size; cut++ {
				dir := copyDir(t, base)
				if err := os.Truncate(lastSegment(t, dir), int64(cut)); err != nil {
					t.Fatal(err)
				}
				rec := expectOpens(t, dir, lay.opts, recs[:len(recs)-1])
				if rec.TornBytes != int64(cut-start) || rec.Corrupt != nil {
					t.Fatalf("cut at %d: recovery %+v, want %d torn bytes", cut, rec, cut-start)
				}
			}
		})
	}
}

func TestZeroFilledTail(t *testing.T) {
	base, recs := fixture(t, layouts[0])
	n := len(recs)
	t.Run("appended zeros", func(t *testing.T) {
		dir := copyDir(t, base)
		editFile(t, lastSegment(t, dir), func(b []byte) []byte { return append(b, make([]byte, 4096)...) })
		if rec := expectOpens(t, dir, Options{}, recs); rec.TornBytes != 4096 {
			t.Fatalf("recovery %+v, want 4096 torn bytes", rec)
		}
	})
	// Zeros over the last k bytes of the last entry (k = 69 includes its
	// length prefix), plus zeros past the end, as a crash can leave them.
	for _, k := range []int{1, 4, 30, testEntryBytes - 1, testEntryBytes} {
		dir := copyDir(t, base)
		editFile(t, lastSegment(t, dir), func(b []byte) []byte {
			clear(b[len(b)-k:])
			return append(b, make([]byte, 512)...)
		})
		expectOpens(t, dir, Options{}, recs[:n-1])
	}
	t.Run("zeros from inside the second-to-last record on", func(t *testing.T) {
		dir := copyDir(t, base)
		_, size, start := lastEntry(t, base)
		editFile(t, lastSegment(t, dir), func(b []byte) []byte {
			clear(b[start-testEntryBytes/2 : size])
			return append(b, make([]byte, 8192)...)
		})
		expectOpens(t, dir, Options{}, recs[:n-2])
	})
}

func TestGarbageTail(t *testing.T) {
	base, recs := fixture(t, layouts[0])
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := func(n int) []byte {
		g := make([]byte, n)
		for i := range g {
			g[i] = byte(rng.Uint32())
		}
		return g
	}
	for _, n := range []int{1, 3, 100, 5000} {
		dir := copyDir(t, base)
		editFile(t, lastSegment(t, dir), func(b []byte) []byte { return append(b, garbage(n)...) })
		expectOpens(t, dir, Options{}, recs)
	}
	// Garbage over the end of the last record and past it.
	dir := copyDir(t, base)
	editFile(t, lastSegment(t, dir), func(b []byte) []byte {
		return append(b[:len(b)-20], garbage(300)...)
	})
	expectOpens(t, dir, Options{}, recs[:len(recs)-1])
}

// flipBit flips bit i (counted from the start of the file) of the file.
func flipBit(t *testing.T, path string, bit int) {
	editFile(t, path, func(b []byte) []byte {
		b[bit/8] ^= 1 << (bit % 8)
		return b
	})
}

func TestFlippedBitInLastRecordIsTornTail(t *testing.T) {
	base, recs := fixture(t, layouts[0])
	_, size, start := lastEntry(t, base)
	for bit := start * 8; bit < size*8; bit++ { // length prefix, checksum and data
		dir := copyDir(t, base)
		flipBit(t, lastSegment(t, dir), bit)
		if rec := expectOpens(t, dir, Options{}, recs[:len(recs)-1]); rec.TornBytes != int64(size-start) {
			t.Fatalf("bit %d: recovery %+v, want %d torn bytes", bit, rec, size-start)
		}
	}
}

// TestFlippedBitInEarlierRecordIsCorruption flips every bit of the 11th of
// 20 records, its length prefix included: a flipped length desynchronises
// the entry parse, so only a search for intact frames at every offset sees
// the records after it.
func TestFlippedBitInEarlierRecordIsCorruption(t *testing.T) {
	base, recs := fixture(t, layouts[0])
	seg := lastSegment(t, base)
	name := filepath.Base(seg)
	offs := entryOffsets(t, seg)
	const damaged = 10 // 0-based: index 11
	from, to := offs[damaged], offs[damaged+1]
	for bit := from * 8; bit < to*8; bit++ {
		dir := copyDir(t, base)
		flipBit(t, lastSegment(t, dir), bit)
		ce := expectCorrupt(t, dir, Options{}, name, damaged+1)
		if ce.Offset != int64(from) {
			t.Fatalf("bit %d: CorruptError offset %d, want %d", bit, ce.Offset, from)
		}

		rec := expectOpens(t, dir, Options{TruncateCorrupt: true}, recs[:damaged])
		if rec.Corrupt == nil || rec.Corrupt.Index != damaged+1 || rec.DroppedRecords != uint64(len(recs)-damaged) {
			t.Fatalf("bit %d: recovery %+v, want index %d and %d dropped", bit, rec, damaged+1, len(recs)-damaged)
		}
	}
}

func TestCorruptionInEarlierSegment(t *testing.T) {
	lay := layouts[1]
	base, recs := fixture(t, lay)
	segs := segmentPaths(t, base)
	offs := entryOffsets(t, segs[1]) // the second segment holds indexes 6..10
	dir := copyDir(t, base)
	flipBit(t, filepath.Join(dir, filepath.Base(segs[1])), (offs[2]+20)*8) // index 8
	expectCorrupt(t, dir, lay.opts, filepath.Base(segs[1]), 8)

	l := mustOpen(t, dir, Options{SegmentBytes: lay.opts.SegmentBytes, TruncateCorrupt: true})
	if l.Dropped() != uint64(len(recs)-7) {
		t.Fatalf("Dropped %d, want %d", l.Dropped(), len(recs)-7)
	}
	assertRecords(t, replayAll(t, l), recs[:7])
	l.Close()
	if n := len(segmentPaths(t, dir)); n != 2 {
		t.Fatalf("%d segment files after cutting in the second, want 2", n)
	}
	expectOpens(t, dir, lay.opts, recs[:7])
}

func TestZeroedRegionInMiddleIsCorruption(t *testing.T) {
	base, _ := fixture(t, layouts[0])
	dir := copyDir(t, base)
	seg := lastSegment(t, dir)
	offs := entryOffsets(t, seg)
	editFile(t, seg, func(b []byte) []byte {
		clear(b[offs[5]+10 : offs[8]+3]) // a lost "sector" across records 6..9
		return b
	})
	expectCorrupt(t, dir, Options{}, filepath.Base(seg), 6)
}

func TestMissingSegmentIsCorruption(t *testing.T) {
	lay := layouts[1]
	base, recs := fixture(t, lay)
	dir := copyDir(t, base)
	segs := segmentPaths(t, dir)
	if err := os.Remove(segs[1]); err != nil { // indexes 6..10 vanish
		t.Fatal(err)
	}
	expectCorrupt(t, dir, lay.opts, filepath.Base(segs[2]), 6)
	opts := lay.opts
	opts.TruncateCorrupt = true
	if rec := expectOpens(t, dir, opts, recs[:5]); rec.DroppedRecords != 11 {
		t.Fatalf("recovery %+v, want 11 records dropped (indexes 11..21)", rec)
	}
}

// TestGiveUpSearchIsCorruption checks the safe side of the bounded search:
// when the search for intact records past the damage runs out of budget,
// Open does not call the damage a torn tail.
func TestGiveUpSearchIsCorruption(t *testing.T) {
	old := resyncBudgetBytes
	resyncBudgetBytes = 64
	t.Cleanup(func() { resyncBudgetBytes = old })
	base, _ := fixture(t, layouts[0])
	dir := copyDir(t, base)
	rng := rand.New(rand.NewPCG(3, 4))
	editFile(t, lastSegment(t, dir), func(b []byte) []byte {
		for range 10000 {
			b = append(b, byte(rng.Uint32()))
		}
		return b
	})
	ce := expectCorrupt(t, dir, Options{}, filepath.Base(lastSegment(t, dir)), 21)
	if !strings.Contains(ce.Reason, "gave up") {
		t.Fatalf("reason %q does not say the search gave up", ce.Reason)
	}
}

// TestUnfinishedTruncation recreates what a crash in the middle of
// tidwall/wal's TruncateFront leaves (a START file beside the old
// segments), with a torn tail on top, and checks Open finishes both.
func TestUnfinishedTruncation(t *testing.T) {
	lay := layouts[1]
	base, recs := fixture(t, lay)
	dir := copyDir(t, base)
	segs := segmentPaths(t, dir)
	offs := entryOffsets(t, segs[1]) // indexes 6..10
	data, err := os.ReadFile(segs[1])
	if err != nil {
		t.Fatal(err)
	}
	start := filepath.Join(dir, segmentName(8)+".START")
	if err := os.WriteFile(start, data[offs[2]:], 0o640); err != nil {
		t.Fatal(err)
	}
	editFile(t, lastSegment(t, dir), func(b []byte) []byte { return b[:len(b)-7] })

	l := mustOpen(t, dir, lay.opts)
	if l.FirstIndex() != 8 || l.LastIndex() != 20 {
		t.Fatalf("first %d last %d, want 8 20", l.FirstIndex(), l.LastIndex())
	}
	assertRecords(t, replayAll(t, l), recs[7:20])
	l.Close()
	if _, err := os.Stat(start); !os.IsNotExist(err) {
		t.Fatalf("START file still there: %v", err)
	}
}
