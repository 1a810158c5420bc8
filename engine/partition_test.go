package engine

import (
	"errors"
	"sync"
	"testing"
)

// A partition's engine hands out order ids and admin-assigned product ids
// only in its residue class, so that ids are unique across partitions and
// name the partition that owns them.
func TestPartitionIDsStayInResidueClass(t *testing.T) {
	clock := NewFakeClock(testEpoch)
	j := &MemJournal{}
	cfg := testConfig(clock, j)
	cfg.IDStride, cfg.IDResidue = 6, 4
	e := New(cfg)
	e.Start()
	defer e.Stop()

	if _, code := e.CreateProduct(ProductSpec{ID: 5, Name: "wrong class", TotalStock: 1}); code != CodeInvalidArgument {
		t.Fatalf("product 5 in partition 4 of 6: code %v, want CodeInvalidArgument", code)
	}
	var ids []uint64
	for i := 0; i < 3; i++ {
		p, code := e.CreateProduct(ProductSpec{Name: "p", TotalStock: 100, MaxPerHold: 10})
		if code != OK {
			t.Fatalf("create: %v", code)
		}
		ids = append(ids, p.ID)
	}
	if ids[0] != 4 || ids[1] != 10 || ids[2] != 16 {
		t.Fatalf("assigned product ids %v, want [4 10 16]", ids)
	}

	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				h := e.CreateHold(ids[i%3], 1, nil)
				if h.Code != OK {
					t.Errorf("hold: %v", h.Code)
					return
				}
				o := e.CreateOrder(h.Hold.Token)
				if o.Code != OK {
					t.Errorf("order: %v", o.Code)
					return
				}
				mu.Lock()
				if seen[o.Order.ID] || o.Order.ID%6 != 4 {
					t.Errorf("order id %d repeated or outside residue 4 mod 6", o.Order.ID)
				}
				seen[o.Order.ID] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 80 {
		t.Fatalf("%d distinct order ids, want 80", len(seen))
	}
}

// unavailableErr is how a cluster journal reports that it lost its
// leadership or its majority.
type unavailableErr struct{}

func (unavailableErr) Error() string     { return "not the leader" }
func (unavailableErr) Unavailable() bool { return true }

// failingJournal fails every submission with err.
type failingJournal struct{ err error }

func (j failingJournal) Submit(_ [][]byte, done func(error)) { done(j.err) }

// A journal that reports itself unavailable refuses with CodeUnavailable (a
// 503 the client retries), any other failure with CodeJournalFailed; both
// refuse every later command too.
func TestJournalFailureCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want Code
	}{
		{unavailableErr{}, CodeUnavailable},
		{errors.Join(errors.New("wrapped"), unavailableErr{}), CodeUnavailable},
		{errors.New("fsync: input/output error"), CodeJournalFailed},
	} {
		mem := &MemJournal{}
		cfg := testConfig(NewFakeClock(testEpoch), mem)
		cfg.Journal = mem
		e := New(cfg)
		e.Start()
		if _, err := e.Seed([]ProductSpec{{ID: 1, Name: "p", TotalStock: 10, MaxPerHold: 5}}); err != nil {
			t.Fatal(err)
		}
		e.Stop()
		cfg.Journal = failingJournal{tc.err}
		next := New(cfg)
		for _, rec := range mem.Records() {
			if err := next.Replay(rec); err != nil {
				t.Fatal(err)
			}
		}
		next.Start()
		if got := next.CreateHold(1, 1, nil).Code; got != tc.want {
			t.Errorf("%v: hold answered %v, want %v", tc.err, got, tc.want)
		}
		if got := next.CreateHold(1, 1, nil).Code; got != tc.want {
			t.Errorf("%v: the next hold answered %v, want %v (a failure is permanent)", tc.err, got, tc.want)
		}
		if p, _ := next.Product(1); p.Available != 10 {
			t.Errorf("%v: available %d after refused holds, want 10", tc.err, p.Available)
		}
		next.Stop()
	}
}

// A replica that is still replaying (a cluster follower applying committed
// records) publishes its counts after every record, so product reads on it
// see the committed state.
func TestReplayPublishesCounts(t *testing.T) {
	te := newTestEngine(t, ProductSpec{ID: 1, Name: "p", TotalStock: 10, MaxPerHold: 5})
	for i := 0; i < 3; i++ {
		if h := te.CreateHold(1, 2, nil); h.Code != OK {
			t.Fatal(h.Code)
		}
	}
	replica := New(te.cfg)
	for i, rec := range te.journal.Records() {
		if err := replica.Replay(rec); err != nil {
			t.Fatal(err)
		}
		p, ok := replica.Product(1)
		if !ok {
			t.Fatalf("after record %d: product missing", i)
		}
		if want := int64(10 - 2*i); p.Available != want || p.Reserved != int64(2*i) {
			t.Fatalf("after record %d: available %d reserved %d, want %d and %d", i, p.Available, p.Reserved, want, 2*i)
		}
	}
}
