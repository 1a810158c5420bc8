package wal

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var errInjected = errors.New("injected I/O error")

// failingHook writes batches normally until fail is set; then the first
// batch is treated per mode ("write": fails without writing, "sync":
// written but the fsync "fails") and every later call is counted as a
// violation, since nothing may be written after a failure.
type failingHook struct {
	mode      string
	fail      atomic.Bool
	failed    atomic.Bool
	afterFail atomic.Int32
	entered   chan struct{} // closed when the failing call starts
	release   chan struct{} // the failing call waits for it
}

func (h *failingHook) hook(write func() error) error {
	if h.failed.Load() {
		h.afterFail.Add(1)
		return write() // let a violation show up on disk too
	}
	if !h.fail.Load() {
		return write()
	}
	h.failed.Store(true)
	close(h.entered)
	<-h.release
	if h.mode == "sync" {
		if err := write(); err != nil {
			return err
		}
	}
	return errInjected
}

func TestWriteOrSyncFailureIsSticky(t *testing.T) {
	for _, mode := range []string{"write", "sync"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			h := &failingHook{mode: mode, entered: make(chan struct{}), release: make(chan struct{})}
			l := mustOpen(t, dir, Options{CommitHook: h.hook})
			l.Start()
			before := testRecords(0, 10)
			for i := range before {
				if err := submitWait(l, before[i:i+1]); err != nil {
					t.Fatal(err)
				}
			}

			// The failing batch is held in its "fsync" while more
			// submissions queue up behind it.
			h.fail.Store(true)
			failing := make(chan error, 1)
			l.Submit([][]byte{testRecord(10)}, func(err error) { failing <- err })
			<-h.entered // the failing batch holds exactly record 10
			const queued = 20
			var wg sync.WaitGroup
			var acked atomic.Int32
			errs := make(chan error, queued)
			for i := 0; i < queued; i++ {
				wg.Add(1)
				l.Submit([][]byte{testRecord(11 + i)}, func(err error) {
					defer wg.Done()
					if err == nil {
						acked.Add(1)
					}
					errs <- err
				})
			}
			close(h.release)
			if err := <-failing; !errors.Is(err, errInjected) {
				t.Fatalf("failing batch: done(%v), want the injected error", err)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if !errors.Is(err, errInjected) {
					t.Fatalf("submission queued behind the failure: done(%v), want the injected error", err)
				}
			}
			if acked.Load() != 0 {
				t.Fatalf("%d submissions acknowledged after a failed %s", acked.Load(), mode)
			}
			if err := submitWait(l, [][]byte{testRecord(99)}); !errors.Is(err, errInjected) {
				t.Fatalf("Submit after the failure: %v, want the injected error", err)
			}
			if err := l.TruncateFront(2); !errors.Is(err, errInjected) {
				t.Fatalf("TruncateFront after the failure: %v, want the injected error", err)
			}
			if l.LastIndex() != uint64(len(before)) {
				t.Fatalf("LastIndex %d, want %d: advanced past the failure", l.LastIndex(), len(before))
			}
			if err := l.Close(); !errors.Is(err, errInjected) {
				t.Fatalf("Close: %v, want the sticky error", err)
			}
			if n := h.afterFail.Load(); n != 0 {
				t.Fatalf("%d writes after the failure", n)
			}

			want := before
			if mode == "sync" { // written, never acknowledged: may be on disk
				want = append(want, testRecord(10))
			}
			assertRecords(t, reopenRecords(t, dir, Options{}), want)
		})
	}
}

// The owner learns of a write failure at once through Failed, and of a
// write that hangs through CommitStalled.
func TestFailedAndStalledAreVisible(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	l, err := Open(t.TempDir(), Options{CommitHook: func(write func() error) error {
		switch calls.Add(1) {
		case 1:
			return write()
		case 2:
			<-release
			return errors.New("disk gone")
		}
		return write()
	}})
	if err != nil {
		t.Fatal(err)
	}
	l.Start()
	defer l.Close()
	submitWait := func() error {
		errc := make(chan error, 1)
		l.Submit([][]byte{[]byte("r")}, func(err error) { errc <- err })
		return <-errc
	}
	if err := submitWait(); err != nil {
		t.Fatal(err)
	}
	if l.CommitStalled(0) {
		t.Fatal("CommitStalled with no write in progress")
	}
	errc := make(chan error, 1)
	l.Submit([][]byte{[]byte("r")}, func(err error) { errc <- err })
	deadline := time.Now().Add(5 * time.Second)
	for !l.CommitStalled(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a write that hangs is not reported as stalled")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-l.Failed():
		t.Fatal("Failed closed before the write failed")
	default:
	}
	close(release)
	if err := <-errc; err == nil {
		t.Fatal("the failed write was acknowledged")
	}
	select {
	case <-l.Failed():
	case <-time.After(5 * time.Second):
		t.Fatal("Failed not closed after a write failure")
	}
	if l.Err() == nil || !strings.Contains(l.Err().Error(), "disk gone") {
		t.Fatalf("Err() = %v, want the write failure", l.Err())
	}
}
