package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/bench/serverproc"
)

// fakeNodePackage is the stand-in node the harness's own tests run.
const fakeNodePackage = "github.com/flashsale/flashsale/bench/cluster/internal/fakenode"

func buildFakeNode(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fakenode")
	if out, err := exec.Command("go", "build", "-o", bin, fakeNodePackage).CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", fakeNodePackage, err, out)
	}
	return bin
}

// TestHarnessWithFakeNodes tests the harness itself against stand-in nodes
// (internal/fakenode) that speak the cluster contract's flags and status
// endpoints: Start writes a cluster file every node accepts and waits for
// leaders; Leader follows a kill -9 and a Restart; the proxies sit on the
// links the contract says (dropping a node's links isolates it, and
// WaitReady says which node is not ready); Converged names a replica whose
// digest differs; and a node started on another node's data directory is
// refused with exit code 2.
func TestHarnessWithFakeNodes(t *testing.T) {
	c := Start(t, Options{Bin: buildFakeNode(t), Proxies: true, Partitions: 3, ReadyTimeout: 5 * time.Second})
	f := c.ReadFile()
	if f.Partitions != 3 || len(f.Nodes) != 3 {
		t.Fatalf("cluster file %+v", f)
	}
	for i, e := range f.Nodes {
		if e.ID != i+1 || e.HTTP != c.HTTPAddr(e.ID) || c.URL(e.ID) != "http://"+e.HTTP || e.HTTP == e.Raft {
			t.Errorf("cluster file entry %+v", e)
		}
	}
	// The stand-ins' views of who leads settle within their heartbeat
	// timeout after the first heartbeats.
	for p := 0; p < 3; p++ {
		deadline := time.Now().Add(2 * time.Second)
		for c.Leader(p) != p%3+1 && time.Now().Before(deadline) {
			time.Sleep(pollInterval)
		}
		if got := c.Leader(p); got != p%3+1 {
			t.Errorf("Leader(%d) = %d, want %d", p, got, p%3+1)
		}
	}
	if err := c.Converged(2 * time.Second); err != nil {
		t.Fatal(err)
	}

	// kill -9 and restart.
	c.Kill9(1)
	if got := c.LiveIDs(); !slices.Equal(got, []int{2, 3}) {
		t.Fatalf("LiveIDs after Kill9(1) = %v", got)
	}
	if got := c.WaitLeader(0, 1, 3*time.Second); got != 2 {
		t.Fatalf("partition 0's leader after Kill9(1): %d, want 2", got)
	}
	c.Restart(1)
	if got := c.WaitLeader(0, 0, 3*time.Second); got == 0 || !c.Up(1) {
		t.Fatalf("after Restart(1): leader %d, node 1 up %v", got, c.Up(1))
	}

	// The proxies are on the links: dropping node 3's isolates it.
	for _, p := range c.LinksOf(3) {
		p.Drop()
	}
	deadline := time.Now().Add(3 * time.Second)
	for c.Healthy(3) && time.Now().Before(deadline) {
		time.Sleep(pollInterval)
	}
	err := c.WaitReady(300 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "node 3") || strings.Contains(err.Error(), "node 1:") {
		t.Errorf("WaitReady with node 3 cut off: %v; want node 3 (only) named", err)
	}
	if c.Link(3, 1).Dropped(DialerToTarget) == 0 || c.Link(2, 3).Dropped(TargetToDialer) == 0 {
		t.Errorf("the proxies of node 3's links dropped nothing: %v, %v", c.Link(1, 3), c.Link(2, 3))
	}
	for _, p := range c.LinksOf(3) {
		p.Heal()
	}
	if err := c.WaitReady(3 * time.Second); err != nil {
		t.Fatalf("after healing: %v", err)
	}

	// A replica that differs is named.
	if err := os.WriteFile(filepath.Join(c.DataDir(2), "digest"), []byte("other"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = c.Converged(200 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "partition 0") || !strings.Contains(err.Error(), "node 2 at 7 digest") {
		t.Errorf("Converged with node 2's digest changed: %v", err)
	}
	if err := os.Remove(filepath.Join(c.DataDir(2), "digest")); err != nil {
		t.Fatal(err)
	}
	c.WaitConverged(2 * time.Second)

	// Another node's data directory is refused.
	c.Kill9(2)
	s := serverproc.LaunchAt(t, c.Bin(), c.HTTPAddr(2), c.DataDir(1), replaceFlag(c.Flags(2), "--node-id", "2")...)
	if code, err := s.WaitExit(5 * time.Second); err != nil || code != 2 {
		t.Errorf("node 2 on node 1's data directory: exit code %d, %v; want 2", code, err)
	}
	c.Restart(2)
}
