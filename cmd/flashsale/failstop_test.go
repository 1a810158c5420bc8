package main

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// postHoldsUntilRefused posts single holds one after another until one is
// not a 201 (or gets no answer), and returns the acknowledged tokens.
func postHoldsUntilRefused(t *testing.T, p *proc, max int) []string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	var tokens []string
	for i := 0; i < max; i++ {
		resp, err := c.Post(p.base+"/api/holds", "application/json", strings.NewReader(`{"product_id":3,"qty":1}`))
		if err != nil {
			return tokens
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return tokens
		}
		var h struct {
			HoldToken string `json:"hold_token"`
		}
		if err := json.Unmarshal(b, &h); err != nil {
			t.Fatalf("201 without a token: %s", b)
		}
		tokens = append(tokens, h.HoldToken)
	}
	t.Fatalf("%d holds acknowledged: the injected failure never came", max)
	return nil
}

// TestFailedWriteStopsTheServer: the log's Nth batch write fails (as a
// broken disk's would); the server acknowledges nothing more and exits with
// code 4 at once; restarted on the same data directory it has every hold it
// acknowledged.
func TestFailedWriteStopsTheServer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p := startProc(t, nil, "--data-dir", dir, "--fault-fail-write-at", "12")
	tokens := postHoldsUntilRefused(t, p, 100)
	if code := p.waitExit(); code != failStopExitCode {
		t.Fatalf("exit code %d after a failed write, want %d:\n%s", code, failStopExitCode, p.log())
	}
	if !strings.Contains(p.log(), "injected write failure") {
		t.Fatalf("the log does not say why the server stopped:\n%s", p.log())
	}
	if len(tokens) == 0 {
		t.Fatal("no hold was acknowledged before the failure: the test checks nothing")
	}
	again := startProc(t, nil, "--data-dir", dir)
	for _, tok := range tokens {
		again.expect(http.StatusOK, "GET", "/api/holds/"+tok, "")
	}
	again.stop(syscall.SIGTERM)
}

// TestHungWriteStopsTheServer: a batch write that never returns (a hung
// disk) stops the server with code 4 once --commit-stall-timeout passed.
func TestHungWriteStopsTheServer(t *testing.T) {
	const stall = 300 * time.Millisecond
	p := startProc(t, nil, "--data-dir", filepath.Join(t.TempDir(), "data"),
		"--fault-stall-write-at", "12", "--commit-stall-timeout", stall.String())
	done := make(chan []string, 1)
	go func() { done <- postHoldsUntilRefused(t, p, 100) }()
	start := time.Now()
	code := p.waitExit()
	if code != failStopExitCode {
		t.Fatalf("exit code %d after a hung write, want %d:\n%s", code, failStopExitCode, p.log())
	}
	if !strings.Contains(p.log(), "commit-stall-timeout") {
		t.Fatalf("the log does not say why the server stopped:\n%s", p.log())
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the server took %v to stop after its disk hung", took)
	}
	<-done
}
