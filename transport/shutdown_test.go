package transport

import (
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
)

// TestShutdownFinishesInFlight: Shutdown stops accepting but waits for a
// request in flight, which gets its real answer once the log acknowledges
// it; only then may the engine stop.
func TestShutdownFinishesInFlight(t *testing.T) {
	gate := &gateJournal{open: true}
	ts := startServer(t, func(s *serverSetup) {
		s.journal = gate
		s.products = []engine.ProductSpec{{ID: 1, Name: "P", PriceCents: 1, TotalStock: 5, MaxPerHold: 1}}
	})
	gate.mu.Lock()
	gate.open = false
	gate.mu.Unlock()
	defer gate.Open()

	answer := make(chan response, 1)
	go func() {
		r, err := ts.tryDo("POST", "/api/holds", `{"product_id":1,"qty":1}`)
		if err != nil {
			r = response{status: -1, body: []byte(err.Error())}
		}
		answer <- r
	}()
	waitFor(t, 5*time.Second, "the hold to reach the journal", func() bool {
		gate.mu.Lock()
		defer gate.mu.Unlock()
		return len(gate.waiting) > 0
	})
	ts.srv.Drain()
	shut := make(chan error, 1)
	go func() { shut <- ts.hs.Shutdown() }()
	select {
	case <-shut:
		t.Fatal("Shutdown returned while a request was in flight")
	case <-time.After(200 * time.Millisecond):
	}
	gate.Open()
	if r := <-answer; r.status != 201 {
		t.Fatalf("in-flight request: %d %s, want 201", r.status, r.body)
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the last request finished")
	}
	if _, err := ts.tryDo("GET", "/healthz", ""); err == nil {
		t.Error("the server still accepts connections after Shutdown")
	}
}
