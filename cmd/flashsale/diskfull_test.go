package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of size (mount's size= option, e.g. "8m") on
// dir, creating it, and unmounts it when the test ends, after the
// processes the test started later are gone. Mounting needs root (or
// CAP_SYS_ADMIN): elsewhere the test is skipped, saying so. CI runs the
// tests as root (.ci/run says whether mounting works).
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("a real full disk needs a small tmpfs, and mounting one is not permitted here (uid %d): %v", os.Getuid(), err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
}

// diskFullSeed is a catalogue with one product deep enough that the disk
// fills long before its stock runs out.
const diskFullSeed = `[{"id":1,"name":"Deep","price_cents":100,"total_stock":100000000,"max_per_hold":10}]`

// holdLoad posts holds of one unit of product 1 from conns connections at
// once until the server refuses one or stops answering, at most holdsMax
// in all and for at most d. It returns every token the server
// acknowledged with a 201, and the first refusal it saw.
func holdLoad(t *testing.T, base string, conns, holdsMax int, d time.Duration) (tokens []string, refusal string) {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: conns}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var (
		mu      sync.Mutex
		stop    bool
		started int
	)
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if stop || started == holdsMax || time.Now().After(deadline) {
					mu.Unlock()
					return
				}
				started++
				mu.Unlock()
				tok, why := postHold(c, base)
				mu.Lock()
				if why == "" {
					tokens = append(tokens, tok)
				} else if !stop {
					stop, refusal = true, why
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return tokens, refusal
}

// postHold posts one hold; why is empty for a 201 and says what happened
// otherwise.
func postHold(c *http.Client, base string) (token, why string) {
	resp, err := c.Post(base+"/api/holds", "application/json", strings.NewReader(`{"product_id":1,"qty":1}`))
	if err != nil {
		return "", err.Error()
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", err.Error()
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Sprintf("%d %s", resp.StatusCode, b)
	}
	var h struct {
		HoldToken string `json:"hold_token"`
	}
	if json.Unmarshal(b, &h) != nil || h.HoldToken == "" {
		return "", fmt.Sprintf("201 without a hold token: %s", b)
	}
	return h.HoldToken, ""
}

// TestFullDiskStopsTheServerAndLosesNothing fills a real disk: the server
// runs on a 2 MiB tmpfs, snapshotting every 2,000 records (so snapshots
// and the log's truncation meet the full disk too), under 16 connections
// posting holds. When the disk is full the server stops: /healthz is not
// 200 (503, or nobody answers), the process exits with failStopExitCode
// and its log names ENOSPC. Its data directory, copied to a roomier disk,
// starts a server that has every hold the crowd was told 201 about, with
// the stock invariant intact.
func TestFullDiskStopsTheServerAndLosesNothing(t *testing.T) {
	small := filepath.Join(t.TempDir(), "small")
	mountTmpfs(t, small, "2m")
	dir := filepath.Join(small, "data")
	seed := filepath.Join(t.TempDir(), "seed.json")
	writeFile(t, seed, diskFullSeed)
	args := []string{"--seed", seed, "--snapshot-every", "2000", "--hold-ttl", "30m", "--order-ttl", "0", "--log-level", "info"}
	p := startProc(t, nil, append([]string{"--data-dir", dir}, args...)...)

	tokens, refusal := holdLoad(t, p.base, 16, 1_000_000, 40*time.Second)
	if refusal == "" {
		t.Fatalf("%d holds acknowledged and the 2 MiB disk never filled:\n%s", len(tokens), tailLines(p.log(), 20))
	}
	if len(tokens) < 1000 {
		t.Fatalf("only %d holds acknowledged before the first refusal (%s): the disk was full before the test began?\n%s",
			len(tokens), refusal, tailLines(p.log(), 20))
	}
	if resp, err := http.Get(p.base + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("/healthz answered 200 after the server refused a hold (%s)", refusal)
		}
	}
	if code := p.waitExit(); code != failStopExitCode {
		t.Fatalf("exit code %d on a full disk, want %d:\n%s", code, failStopExitCode, tailLines(p.log(), 30))
	}
	if !strings.Contains(p.log(), syscall.ENOSPC.Error()) {
		t.Fatalf("the log does not say the disk is full (%q):\n%s", syscall.ENOSPC.Error(), tailLines(p.log(), 30))
	}
	t.Logf("%d holds acknowledged; first refusal: %s; snapshot failures logged: %d", len(tokens), refusal,
		strings.Count(p.log(), `"message":"snapshot failed;`)+strings.Count(p.log(), `"dropping the log's front after a snapshot failed`))

	roomy := filepath.Join(t.TempDir(), "data")
	if err := os.CopyFS(roomy, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	q := startProc(t, nil, append([]string{"--data-dir", roomy}, args...)...)
	prod := q.expect(http.StatusOK, "GET", "/api/products/1", "").obj(t)
	total, avail, reserved, sold := prod["total_stock"].(float64), prod["available_stock"].(float64),
		prod["reserved_stock"].(float64), prod["sold_stock"].(float64)
	if avail+reserved+sold != total {
		t.Fatalf("stock invariant broken after the restart: %v", prod)
	}
	if int(reserved) < len(tokens) {
		t.Fatalf("%v units reserved after the restart, but %d holds were acknowledged", reserved, len(tokens))
	}
	if missing := missingHolds(q.base, tokens, 8); len(missing) > 0 {
		t.Fatalf("%d of %d acknowledged holds are missing after the restart, e.g. %s", len(missing), len(tokens), missing[0])
	}
	q.stop(syscall.SIGTERM)
}

// missingHolds GETs every token from conns connections at once and
// returns those that are not answered 200 (with the answer).
func missingHolds(base string, tokens []string, conns int) []string {
	tr := &http.Transport{MaxIdleConnsPerHost: conns}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var (
		mu      sync.Mutex
		missing []string
		wg      sync.WaitGroup
	)
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(tokens); i += conns {
				why := ""
				resp, err := c.Get(base + "/api/holds/" + tokens[i])
				if err != nil {
					why = err.Error()
				} else {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						why = resp.Status
					}
				}
				if why != "" {
					mu.Lock()
					missing = append(missing, tokens[i]+": "+why)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return missing
}

// tailLines is the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// fillDisk writes a file in dir until the file system is full.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for range 1 << 16 { // at most 256 MiB
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return path
		}
	}
	t.Fatalf("%s never filled", dir)
	return ""
}

// metricValue is the value of the sample named name (labels included) on
// the server's /metrics page, or -1 without one.
func metricValue(t *testing.T, p *proc, name string) float64 {
	t.Helper()
	for _, l := range strings.Split(string(p.expect(http.StatusOK, "GET", "/metrics", "").body), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("metric line %q: %v", l, err)
			}
			return f
		}
	}
	return -1
}

// TestSnapshotOnAFullDiskBacksOff: the snapshots' directory is a full
// tmpfs; the log's disk has room. A due snapshot fails with ENOSPC; the
// server goes on serving (health 200, holds 201), says in its log what
// failed and when it tries again, counts the failures in /metrics, and
// backs off: 2 s after the first failure, 4 s after the second (not every
// second, pausing the engine each time). Once there is room again, the
// next attempt writes the snapshot and the failure gauges return to 0.
func TestSnapshotOnAFullDiskBacksOff(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	snaps := filepath.Join(dir, "snapshots")
	mountTmpfs(t, snaps, "64k")
	filler := fillDisk(t, snaps)
	p := startProc(t, nil, "--data-dir", dir, "--snapshot-every", "20", "--hold-ttl", "30m")
	for range 25 {
		p.expect(http.StatusCreated, "POST", "/api/holds", `{"product_id":3,"qty":1}`)
	}
	// The snapshotter's own line, not the final snapshot of a shutdown.
	const failedMsg = `"message":"snapshot failed; the log keeps growing`
	failures := func() int { return strings.Count(p.log(), failedMsg) }
	waitFor(t, "failed snapshot", func() bool { return failures() >= 1 })
	first := time.Now()
	waitFor(t, "second failed snapshot", func() bool { return failures() >= 2 })
	select {
	case <-p.exit:
		t.Fatalf("the server stopped (code %d) after a failed snapshot:\n%s", p.code, tailLines(p.log(), 15))
	default:
	}
	if gap := time.Since(first); gap < snapshotRetryFirst-500*time.Millisecond {
		t.Errorf("the second attempt came %v after the first failure, want about %v", gap, snapshotRetryFirst)
	}
	// The next attempt is 4 s away: none in the next 1.5 s (without a
	// backoff there would be one every second).
	time.Sleep(1500 * time.Millisecond)
	if n := failures(); n != 2 {
		t.Fatalf("%d failed snapshots 1.5 s after the second, want 2 (retrying without backing off):\n%s", n, tailLines(p.log(), 10))
	}
	var retries []string
	for _, l := range strings.Split(p.log(), "\n") {
		if !strings.Contains(l, failedMsg) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if e, _ := m["error"].(string); !strings.Contains(e, syscall.ENOSPC.Error()) {
			t.Errorf("the failure does not name its cause: %s", l)
		}
		retries = append(retries, fmt.Sprint(m["retry_in"]))
	}
	// retry_in is logged in milliseconds.
	if want := []string{"2000", "4000"}; strings.Join(retries, ",") != strings.Join(want, ",") {
		t.Errorf("retry_in of the failures %v, want %v:\n%s", retries, want, tailLines(p.log(), 15))
	}
	if v := metricValue(t, p, "flashsale_snapshot_write_failures_total"); v != 2 {
		t.Errorf("flashsale_snapshot_write_failures_total %v, want 2", v)
	}
	if v := metricValue(t, p, "flashsale_snapshot_failures_in_a_row"); v != 2 {
		t.Errorf("flashsale_snapshot_failures_in_a_row %v, want 2", v)
	}
	if v := metricValue(t, p, "flashsale_snapshot_retry_seconds"); v != 4 {
		t.Errorf("flashsale_snapshot_retry_seconds %v, want 4", v)
	}
	p.expect(http.StatusOK, "GET", "/healthz", "")
	p.expect(http.StatusCreated, "POST", "/api/holds", `{"product_id":3,"qty":1}`)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "snapshot once there is room", func() bool { return strings.Contains(p.log(), "snapshots work again") })
	if n := len(snapshotFiles(t, dir)); n != 1 {
		t.Errorf("%d snapshot files once there is room, want 1", n)
	}
	if v := metricValue(t, p, "flashsale_snapshots_total"); v != 1 {
		t.Errorf("flashsale_snapshots_total %v, want 1", v)
	}
	for _, name := range []string{"flashsale_snapshot_failures_in_a_row", "flashsale_snapshot_retry_seconds"} {
		if v := metricValue(t, p, name); v != 0 {
			t.Errorf("%s %v after a success, want 0", name, v)
		}
	}
	p.stop(syscall.SIGTERM)
}
