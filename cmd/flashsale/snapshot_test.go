package main

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
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
