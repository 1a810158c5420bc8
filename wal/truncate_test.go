package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestTruncateFront(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 5 * testEntryBytes}
	recs := testRecords(0, 100)
	writeLog(t, dir, opts, recs[:50])

	l := mustOpen(t, dir, opts)
	if err := l.TruncateFront(11); err != nil { // before Start: runs inline
		t.Fatal(err)
	}
	if l.FirstIndex() != 11 {
		t.Fatalf("FirstIndex %d, want 11", l.FirstIndex())
	}
	assertRecords(t, replayAll(t, l), recs[10:50])
	l.Start()
	if err := submitWait(l, recs[50:100]); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateFront(51); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []uint64{50, 102} {
		if err := l.TruncateFront(bad); !errors.Is(err, ErrOutOfRange) {
			t.Fatalf("TruncateFront(%d) on [51, 100]: %v, want ErrOutOfRange", bad, err)
		}
	}
	if err := submitWait(l, [][]byte{testRecord(100)}); err != nil {
		t.Fatalf("append after TruncateFront: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = mustOpen(t, dir, opts)
	if l.FirstIndex() != 51 || l.LastIndex() != 101 {
		t.Fatalf("reopened: first %d last %d, want 51 101", l.FirstIndex(), l.LastIndex())
	}
	assertRecords(t, replayAll(t, l), testRecords(50, 101))
	l.Start()
	if err := l.TruncateFront(102); err != nil { // empties the log
		t.Fatal(err)
	}
	if l.FirstIndex() != 102 || l.LastIndex() != 101 {
		t.Fatalf("emptied: first %d last %d, want 102 101", l.FirstIndex(), l.LastIndex())
	}
	if err := submitWait(l, [][]byte{testRecord(101)}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, opts)
	defer l.Close()
	if l.FirstIndex() != 102 || l.LastIndex() != 102 {
		t.Fatalf("reopened: first %d last %d, want 102 102", l.FirstIndex(), l.LastIndex())
	}
	assertRecords(t, replayAll(t, l), testRecords(101, 102))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateFront(102); !errors.Is(err, ErrClosed) {
		t.Fatalf("TruncateFront after Close: %v, want ErrClosed", err)
	}
}

// TestSegmentMirror checks that the committer's model of tidwall/wal's
// tail segment (which decides when to fsync the directory) matches the
// files, across many segment switches and a TruncateFront.
func TestSegmentMirror(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 1000, NoSync: true}
	l := mustOpen(t, dir, opts)
	l.Start()
	var want [][]byte
	for i := 0; i < 300; i++ {
		n := 1 + i%7
		recs := make([][]byte, n)
		for j := range recs {
			recs[j] = make([]byte, 1+(i*31+j*17)%300)
			recs[j][0] = byte(i)
		}
		if err := submitWait(l, recs); err != nil {
			t.Fatal(err)
		}
		want = append(want, recs...)
		if i == 150 {
			if err := l.TruncateFront(l.LastIndex() - 2); err != nil {
				t.Fatal(err)
			}
			want = want[len(want)-3:]
		}
		fi, err := os.Stat(lastSegment(t, dir))
		if err != nil {
			t.Fatal(err)
		}
		if l.tailBytes != int(fi.Size()) { // the committer is idle: done ran
			t.Fatalf("after submission %d: mirror says tail segment has %d bytes, file has %d", i, l.tailBytes, fi.Size())
		}
	}
	if n := len(segmentPaths(t, dir)); n < 10 {
		t.Fatalf("only %d segments: the test did not exercise segment switches", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	assertRecords(t, reopenRecords(t, dir, opts), want)
}

func TestSubmitDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	l := mustOpen(t, t.TempDir(), Options{NoSync: true})
	l.Start()
	defer l.Close()
	recs := [][]byte{testRecord(0), testRecord(1)}
	ack := make(chan error, 1)
	done := func(err error) { ack <- err }
	for range 1000 { // warm up buffers
		l.Submit(recs, done)
		<-ack
	}
	allocs := testing.AllocsPerRun(5000, func() {
		l.Submit(recs, done)
		if err := <-ack; err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per Submit round trip, want 0", allocs)
	}
}

// TestTruncateFrontFailureLeavesTheLogUsable: a TruncateFront that fails
// before any file changed (here the copy of the new first segment cannot
// be created, as on a full disk) is ErrTruncateFailed, not the log's
// permanent failure: Failed stays open, writes go on, every record is
// kept, and a later TruncateFront succeeds.
func TestTruncateFrontFailureLeavesTheLogUsable(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 5 * testEntryBytes}
	l := mustOpen(t, dir, opts)
	l.Start()
	defer l.Close()
	if err := submitWait(l, testRecords(0, 50)); err != nil {
		t.Fatal(err)
	}
	// tidwall/wal writes <index>.START.TEMP first; a directory in its
	// place makes that open fail (it removes the directory afterwards).
	blocker := filepath.Join(dir, fmt.Sprintf("%020d.START.TEMP", 23))
	if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := l.TruncateFront(23)
	if !errors.Is(err, ErrTruncateFailed) {
		t.Fatalf("TruncateFront with its copy blocked: %v, want ErrTruncateFailed", err)
	}
	select {
	case <-l.Failed():
		t.Fatalf("a truncation that changed nothing failed the log: %v", l.Err())
	default:
	}
	if l.FirstIndex() != 1 {
		t.Fatalf("FirstIndex %d after a failed truncation, want 1", l.FirstIndex())
	}
	if err := submitWait(l, testRecords(50, 60)); err != nil {
		t.Fatalf("append after a failed truncation: %v", err)
	}
	_ = os.RemoveAll(blocker)
	if err := l.TruncateFront(23); err != nil {
		t.Fatalf("TruncateFront once the copy can be made: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	assertRecords(t, reopenRecords(t, dir, opts), testRecords(22, 60))
}
