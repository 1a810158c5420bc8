package engine

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// TestRaceForLastUnits: 1,000 goroutines race for 50 units; exactly the stock
// is granted, and each refusal reports what was left at its instant.
func TestRaceForLastUnits(t *testing.T) {
	const stock, racers = 50, 1000
	te := newTestEngine(t, ProductSpec{ID: 1, Name: "Hot", PriceCents: 1, TotalStock: stock, MaxPerHold: 1})
	var granted, refused atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < racers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for {
				switch r := te.CreateHold(1, 1, nil); r.Code {
				case OK:
					granted.Add(1)
				case CodeInsufficientStock:
					if r.Available != 0 {
						t.Errorf("refused with %d available", r.Available)
					}
					refused.Add(1)
				case CodeOverloaded:
					continue // the inbox was full: a real client retries
				default:
					t.Errorf("code %s", r.Code)
				}
				return
			}
		}()
	}
	close(start)
	wg.Wait()
	if granted.Load() != stock || refused.Load() != racers-stock {
		t.Fatalf("granted %d refused %d, want %d and %d", granted.Load(), refused.Load(), stock, racers-stock)
	}
	if p := te.product(1); p.Available != 0 || p.Reserved != stock {
		t.Fatalf("product = %+v", p)
	}
}

// TestConcurrentMixedTrafficKeepsInvariant drives holds, orders, payments
// and expiry on several products from many goroutines, checking the
// published counts all along, then that replay rebuilds the same state.
func TestConcurrentMixedTrafficKeepsInvariant(t *testing.T) {
	te := newTestEngine(t,
		ProductSpec{ID: 1, Name: "A", PriceCents: 3, TotalStock: 40, MaxPerHold: 3},
		ProductSpec{ID: 2, Name: "B", PriceCents: 5, TotalStock: 15, MaxPerHold: 2})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() { // a reader checking the invariant on published counts
		defer close(readerDone)
		for {
			select {
			case <-stop:
				return
			default:
				if err := te.CheckInvariant(); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				pid := uint64(1 + (g+i)%2)
				h := te.CreateHold(pid, int64(1+i%2), nil)
				if h.Code != OK {
					continue
				}
				o := te.CreateOrder(h.Hold.Token)
				if o.Code != OK {
					t.Errorf("order: %s", o.Code)
					continue
				}
				key := []byte(fmt.Sprintf("g%d-i%d", g, i))
				te.ApplyPayment(Payment{OrderID: o.Order.ID, Success: i%3 != 0}, key)
				te.ApplyPayment(Payment{OrderID: o.Order.ID, Success: i%3 != 0}, key)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-readerDone
	applied := te.Stats().WebhooksApplied.Load()
	if applied != te.Stats().OrdersCreated.Load() {
		t.Fatalf("%d payments applied for %d orders", applied, te.Stats().OrdersCreated.Load())
	}
	te.restart()
}
