package wal

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// killChildEnv names the log directory when the test binary runs as the
// child of TestKill9LosesNothingAcknowledged.
const killChildEnv = "WAL_TEST_KILL_CHILD_DIR"

// TestKill9LosesNothingAcknowledged runs a writer in a child process,
// kills it with SIGKILL while 8 goroutines are committing, and checks
// that every record the child saw acknowledged is in the reopened log,
// and that each writer's records form a gap-free sequence. Three rounds
// append to the same log, so recovery after a kill is also exercised.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	acked := map[string]bool{}
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$")
		cmd.Env = append(os.Environ(), killChildEnv+"="+dir, fmt.Sprintf("WAL_TEST_KILL_ROUND=%d", round))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(out)
		killAt := 100 + 150*round
		n := 0
		for lines.Scan() { // continues after the kill until the pipe drains
			rec, ok := strings.CutPrefix(lines.Text(), "ack ")
			if !ok {
				continue
			}
			acked[rec] = true
			if n++; n == killAt {
				cmd.Process.Kill()
			}
		}
		cmd.Wait()
		if n < killAt {
			t.Fatalf("round %d: child exited after %d acknowledgements", round, n)
		}

		l := mustOpen(t, dir, Options{})
		inLog := map[string]bool{}
		nextSeq := map[string]int{} // per "round writer": the next expected sequence number
		for _, r := range replayAll(t, l) {
			var rnd, w, seq int
			if _, err := fmt.Sscanf(string(r), "r%d w%d s%d", &rnd, &w, &seq); err != nil {
				t.Fatalf("record %q: %v", r, err)
			}
			key := fmt.Sprintf("r%d w%d", rnd, w)
			if seq != nextSeq[key] {
				t.Fatalf("writer %s: record %d follows %d: a gap or reordering", key, seq, nextSeq[key]-1)
			}
			nextSeq[key]++
			inLog[string(r)] = true
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		for rec := range acked {
			if !inLog[rec] {
				t.Fatalf("round %d: acknowledged record %q lost after kill -9", round, rec)
			}
		}
	}
}

// TestKillChild is the child process of TestKill9LosesNothingAcknowledged;
// it does nothing in a normal test run.
func TestKillChild(t *testing.T) {
	dir := os.Getenv(killChildEnv)
	if dir == "" {
		t.Skip("helper process")
	}
	l, err := Open(dir, Options{})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	if err := l.Replay(func([]byte) error { return nil }); err != nil {
		fmt.Println("replay:", err)
		os.Exit(2)
	}
	l.Start()
	var stdout sync.Mutex
	for w := range 8 {
		go func() {
			for seq := 0; ; seq++ {
				rec := fmt.Sprintf("r%s w%d s%d", os.Getenv("WAL_TEST_KILL_ROUND"), w, seq)
				if err := submitWait(l, [][]byte{[]byte(rec)}); err != nil {
					fmt.Println("submit:", err)
					os.Exit(2)
				}
				stdout.Lock()
				fmt.Printf("ack %s\n", rec)
				stdout.Unlock()
			}
		}()
	}
	select {}
}
