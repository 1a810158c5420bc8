package wal

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRoundTripAndReopen(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{})
	if got := replayAll(t, l); len(got) != 0 {
		t.Fatalf("new log replayed %d records", len(got))
	}
	if l.FirstIndex() != 1 || l.LastIndex() != 0 {
		t.Fatalf("new log: first %d last %d, want 1 0", l.FirstIndex(), l.LastIndex())
	}
	l.Start()
	want := testRecords(0, 100)
	for i := 0; i < len(want); {
		n := min(1+i%4, len(want)-i) // submissions of 1 to 4 records
		if err := submitWait(l, want[i:i+n]); err != nil {
			t.Fatal(err)
		}
		i += n
	}
	if l.LastIndex() != 100 {
		t.Fatalf("LastIndex %d, want 100", l.LastIndex())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = mustOpen(t, dir, Options{})
	assertRecords(t, replayAll(t, l), want)
	if l.FirstIndex() != 1 || l.LastIndex() != 100 {
		t.Fatalf("reopened: first %d last %d, want 1 100", l.FirstIndex(), l.LastIndex())
	}
	l.Start()
	more := testRecords(100, 150)
	if err := submitWait(l, more); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	assertRecords(t, reopenRecords(t, dir, Options{}), append(want, more...))
}

// TestConcurrentSubmitters checks that with many goroutines submitting at
// once (through a tiny queue and tiny batches, so backpressure and batch
// splitting happen), every record lands exactly once, every done runs once,
// done calls come in Submit order, and the log order is the Submit order.
func TestConcurrentSubmitters(t *testing.T) {
	dir := t.TempDir()
	var l *Log
	biggestBatch := uint64(0) // only the committer touches it until Close
	hook := func(write func() error) error {
		before, _ := l.tw.LastIndex()
		err := write()
		after, _ := l.tw.LastIndex()
		biggestBatch = max(biggestBatch, after-before)
		return err
	}
	l = mustOpen(t, dir, Options{QueueCap: 8, BatchRecordsMax: 16, BatchBytesMax: 16 * 64, NoSync: true, CommitHook: hook})
	l.Start()

	const writers, perWriter = 16, 150
	var (
		orderMu   sync.Mutex // makes "take a sequence number, Submit" atomic
		nextSeq   int
		submitted [][]byte // records in Submit order
		doneMu    sync.Mutex
		doneSeqs  []int
		wg        sync.WaitGroup
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				n := 1 + (w+i)%3
				recs := make([][]byte, n)
				for j := range recs {
					recs[j] = []byte(fmt.Sprintf("writer %02d submission %04d record %d", w, i, j))
				}
				ack := make(chan error, 1)
				orderMu.Lock()
				seq := nextSeq
				nextSeq++
				submitted = append(submitted, recs...)
				l.Submit(recs, func(err error) {
					doneMu.Lock()
					doneSeqs = append(doneSeqs, seq)
					doneMu.Unlock()
					ack <- err
				})
				orderMu.Unlock()
				if i%5 != 0 { // most writers wait; some pipeline
					if err := <-ack; err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	doneMu.Lock()
	defer doneMu.Unlock()
	if len(doneSeqs) != nextSeq {
		t.Fatalf("%d done calls for %d submissions", len(doneSeqs), nextSeq)
	}
	for i, s := range doneSeqs {
		if s != i {
			t.Fatalf("done call %d was for submission %d: not FIFO", i, s)
		}
	}
	assertRecords(t, reopenRecords(t, dir, Options{}), submitted)
	if st := l.Stats(); st.Records != uint64(len(submitted)) || st.Batches == 0 || st.Batches > uint64(nextSeq) {
		t.Fatalf("stats %+v for %d records in %d submissions", st, len(submitted), nextSeq)
	}
	if biggestBatch > 16 {
		t.Fatalf("a batch held %d records, BatchRecordsMax is 16", biggestBatch)
	}
}

// TestEmptySubmissionIsBarrier checks that a submission without records is
// acknowledged after, never before, the submissions ahead of it.
func TestEmptySubmissionIsBarrier(t *testing.T) {
	gate := make(chan struct{})
	l := mustOpen(t, t.TempDir(), Options{CommitHook: func(write func() error) error {
		<-gate // hold the first batch in "fsync"
		return write()
	}})
	l.Start()
	var mu sync.Mutex
	var order []string
	note := func(name string) func(error) {
		return func(err error) {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
		}
	}
	l.Submit([][]byte{testRecord(1)}, note("first"))
	l.Submit(nil, note("barrier"))
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	early := len(order)
	mu.Unlock()
	if early != 0 {
		t.Fatalf("barrier or first acknowledged while the first batch was still being written: %v", order)
	}
	close(gate)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(order) != "[first barrier]" {
		t.Fatalf("done order %v, want [first barrier]", order)
	}
}

func TestEmptyRecordRejected(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{})
	l.Start()
	if err := submitWait(l, [][]byte{testRecord(0), {}}); !errors.Is(err, ErrEmptyRecord) {
		t.Fatalf("submission with an empty record: %v, want ErrEmptyRecord", err)
	}
	if err := submitWait(l, [][]byte{testRecord(1)}); err != nil {
		t.Fatalf("log unusable after an empty record: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	assertRecords(t, reopenRecords(t, dir, Options{}), [][]byte{testRecord(1)})
}

func TestCloseDrains(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{QueueCap: 16})
	l.Start()
	const n = 500
	var mu sync.Mutex
	acked := 0
	want := testRecords(0, n)
	submittedAll := make(chan struct{})
	go func() {
		for i := 0; i < n; i++ {
			l.Submit(want[i:i+1], func(err error) {
				if err != nil {
					t.Errorf("drained submission failed: %v", err)
				}
				mu.Lock()
				acked++
				mu.Unlock()
			})
		}
		close(submittedAll)
	}()
	<-submittedAll // every Submit has returned, most still queued
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if acked != n {
		t.Fatalf("Close returned with %d of %d done calls made", acked, n)
	}
	mu.Unlock()
	if l.LastIndex() != n {
		t.Fatalf("LastIndex %d after Close, want %d", l.LastIndex(), n)
	}

	var lateErr error
	l.Submit(want[:1], func(err error) { lateErr = err }) // after Close: synchronous
	if !errors.Is(lateErr, ErrClosed) {
		t.Fatalf("Submit after Close: %v, want ErrClosed", lateErr)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	assertRecords(t, reopenRecords(t, dir, Options{}), want)
}

// TestCloseBeforeStartCommitsQueued fills the queue before Start, with
// one more Submit blocked on it, and checks that Close commits them all.
func TestCloseBeforeStartCommitsQueued(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{QueueCap: 2})
	var called atomic.Int32
	want := testRecords(0, 3)
	submitted := make(chan struct{})
	go func() {
		for i := range want {
			l.Submit(want[i:i+1], func(err error) {
				if err != nil {
					t.Error(err)
				}
				called.Add(1)
			})
		}
		close(submitted)
	}()
	for len(l.subs) < cap(l.subs) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond) // let the third Submit block on the full queue
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	<-submitted
	if n := called.Load(); n != 3 {
		t.Fatalf("done called %d times, want 3", n)
	}
	assertRecords(t, reopenRecords(t, dir, Options{}), want)
}

func TestReplayRules(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, Options{}, testRecords(0, 5))
	l := mustOpen(t, dir, Options{})
	defer l.Close()
	stop := errors.New("stop")
	calls := 0
	if err := l.Replay(func([]byte) error { calls++; return stop }); err != stop || calls != 1 {
		t.Fatalf("Replay with failing fn: err %v after %d calls, want stop after 1", err, calls)
	}
	assertRecords(t, replayAll(t, l), testRecords(0, 5)) // Replay may run again before Start
	l.Start()
	if err := l.Replay(func([]byte) error { return nil }); !errors.Is(err, ErrStarted) {
		t.Fatalf("Replay after Start: %v, want ErrStarted", err)
	}
}

func TestSecondOpenOfSameDirRefused(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{})
	if l2, err := Open(dir, Options{}); err == nil {
		l2.Close()
		t.Fatal("a second Open of an open log succeeded")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, dir, Options{}).Close() // the lock is released by Close
}
