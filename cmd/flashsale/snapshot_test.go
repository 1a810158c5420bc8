package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/wal"
	"github.com/rs/zerolog"
)

func snapshotFiles(t *testing.T, dataDir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dataDir, "snapshots", "*.snap"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return names
}

// TestSnapshotsBoundTheLog: with --snapshot-every, snapshots are written
// while the server works, the log before the previous snapshot is dropped,
// and a restart (after kill -9) rebuilds the same state from snapshot + log.
func TestSnapshotsBoundTheLog(t *testing.T) {
	dir := t.TempDir()
	p := startProc(t, nil, "--data-dir", dir, "--snapshot-every", "40")
	var tokens []string
	for i := 0; i < 300; i++ {
		tokens = append(tokens, field(t, p.expect(201, "POST", "/api/holds", `{"product_id":3,"qty":1}`), "hold_token"))
		if i%100 == 99 {
			waitFor(t, "a snapshot", func() bool { return strings.Count(p.log(), "snapshot written") >= (i+1)/100 })
		}
	}
	id := field(t, p.expect(201, "POST", "/api/orders", `{"hold_token":"`+tokens[7]+`"}`), "order_id")
	p.expect(200, "POST", "/api/payments/webhook", `{"status":"success","order_id":`+id+`}`, "Idempotency-Key", "snap-pay")
	products := p.expect(200, "GET", "/api/products", "")
	if n := len(snapshotFiles(t, dir)); n == 0 || n > 2 {
		t.Fatalf("%d snapshot files, want 1 or 2", n)
	}
	segments, _ := filepath.Glob(filepath.Join(dir, "wal", "0*"))
	sort.Strings(segments)
	if len(segments) == 0 || filepath.Base(segments[0]) == "00000000000000000001" {
		t.Fatalf("the log's front was not dropped: segments %v", segments)
	}
	p.stop(syscall.SIGKILL)

	q := startProc(t, nil, "--data-dir", dir, "--snapshot-every", "40")
	if !strings.Contains(q.log(), "snapshot loaded") {
		t.Fatalf("restart did not use a snapshot:\n%s", q.log())
	}
	sameBody(t, "products", q.expect(200, "GET", "/api/products", ""), products)
	for _, tok := range tokens {
		q.expect(200, "GET", "/api/holds/"+tok, "")
	}
	r := q.expect(200, "POST", "/api/payments/webhook", `{"status":"success","order_id":`+id+`}`, "Idempotency-Key", "snap-pay")
	if r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("webhook key lost across the snapshot: %+v", r)
	}
	q.stop(syscall.SIGTERM)
}

// TestDamagedNewestSnapshotFallsBack: a corrupt newest snapshot is skipped;
// the previous one plus the log (kept back to it) rebuild the state.
func TestDamagedNewestSnapshotFallsBack(t *testing.T) {
	dir := t.TempDir()
	p := startProc(t, nil, "--data-dir", dir, "--snapshot-every", "25")
	for want := 1; want <= 2; want++ {
		for i := 0; i < 30; i++ {
			p.expect(201, "POST", "/api/holds", `{"product_id":3,"qty":1}`)
		}
		waitFor(t, "a snapshot", func() bool { return len(snapshotFiles(t, dir)) == want })
	}
	products := p.expect(200, "GET", "/api/products", "")
	p.stop(syscall.SIGKILL)

	files := snapshotFiles(t, dir)
	newest := files[len(files)-1]
	data, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(newest, data, 0o644); err != nil {
		t.Fatal(err)
	}
	q := startProc(t, nil, "--data-dir", dir, "--snapshot-every", "0")
	if !strings.Contains(q.log(), "skipped a damaged snapshot") {
		t.Fatalf("the damaged snapshot was not reported:\n%s", q.log())
	}
	sameBody(t, "products", q.expect(200, "GET", "/api/products", ""), products)
}

// waitFor polls cond for up to 10 s; snapshots are checked once a second.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSnapshotTruncateFailureKeepsTheLog: a snapshot is written but the
// drop of the log's front after it fails without changing anything (the
// copy tidwall/wal makes of the new first segment cannot be created, as on
// a full disk). take says so (errSnapshotTruncate) and counts it; the log
// has not failed and keeps its records, the engine goes on, and the next
// snapshot drops the front.
func TestSnapshotTruncateFailureKeepsTheLog(t *testing.T) {
	dir := t.TempDir()
	walDir := filepath.Join(dir, "wal")
	wlog, err := wal.Open(walDir, wal.Options{NoSync: true, SegmentBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	wlog.Start()
	defer wlog.Close()
	cfg := engine.DefaultConfig()
	cfg.Journal = wlog
	eng := engine.New(cfg)
	eng.Start()
	defer eng.Stop()
	if _, err := eng.Seed([]engine.ProductSpec{{ID: 1, Name: "P", PriceCents: 1, TotalStock: 1_000_000, MaxPerHold: 1}}); err != nil {
		t.Fatal(err)
	}
	holds := func(n int) {
		t.Helper()
		for range n {
			if r := eng.CreateHold(1, 1, nil); r.Code != engine.OK {
				t.Fatalf("hold: %v", r.Code)
			}
		}
	}
	s := &snapshotter{eng: eng, wlog: wlog, dir: wal.SnapshotDir(dir), snapshotEvery: 1, log: zerolog.Nop()}
	holds(200)
	if err := s.take(); err != nil {
		t.Fatal(err)
	}
	first := s.lastIndex
	holds(200)
	blocker := filepath.Join(walDir, fmt.Sprintf("%020d.START.TEMP", first))
	if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	err = s.take()
	if !errors.Is(err, errSnapshotTruncate) || !errors.Is(err, wal.ErrTruncateFailed) {
		t.Fatalf("take with the truncation blocked: %v, want errSnapshotTruncate and wal.ErrTruncateFailed", err)
	}
	if got := s.stats.truncateFailures.Load(); got != 1 {
		t.Fatalf("truncate failures %d, want 1", got)
	}
	if got := s.stats.written.Load(); got != 2 {
		t.Fatalf("snapshots written %d, want 2 (the second was saved before the truncation)", got)
	}
	select {
	case <-wlog.Failed():
		t.Fatalf("the failed truncation failed the log: %v", wlog.Err())
	default:
	}
	if wlog.FirstIndex() != 1 {
		t.Fatalf("log starts at %d after a failed truncation, want 1", wlog.FirstIndex())
	}
	second := s.lastIndex
	holds(200) // the engine goes on
	if err := s.take(); err != nil {
		t.Fatalf("the next snapshot: %v", err)
	}
	if wlog.FirstIndex() != second {
		t.Fatalf("log starts at %d after the next snapshot, want %d", wlog.FirstIndex(), second)
	}
}

// TestSnapshotRetryBacksOff: the wait after a failure doubles from
// snapshotRetryFirst up to snapshotRetryMax.
func TestSnapshotRetryBacksOff(t *testing.T) {
	var got []time.Duration
	for w := time.Duration(0); len(got) < 12; {
		w = nextSnapshotRetry(w)
		got = append(got, w)
	}
	if got[0] != snapshotRetryFirst || got[1] != 2*snapshotRetryFirst || got[len(got)-1] != snapshotRetryMax {
		t.Fatalf("waits %v: want %v doubling up to %v", got, snapshotRetryFirst, snapshotRetryMax)
	}
}
