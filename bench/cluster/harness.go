package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/bench/serverproc"
)

// Defaults of Options and the harness's time bounds.
const (
	defaultNodes      = 3
	defaultPartitions = 3
	// DefaultReadyTimeout bounds how long Start (and Restart) wait for the
	// cluster to serve: every live node's /healthz 200 and a leader for
	// every partition.
	DefaultReadyTimeout = 15 * time.Second
	// probeTimeout bounds one HTTP request of the harness to a node.
	probeTimeout = 2 * time.Second
	// pollInterval is the pause between two probes of a wait.
	pollInterval = 25 * time.Millisecond
)

// Options shape a cluster. The zero value is 3 nodes, 3 partitions, the
// server's built-in catalog, no proxies.
type Options struct {
	Nodes      int    // 3 or 5; default 3
	Partitions int    // 1 to 64; default 3
	Seed       []byte // contents of the --seed file given to every node; nil: none
	// Proxies puts a Proxy on every link between two nodes (see Link), so
	// tests can cut, drop and delay Raft traffic.
	Proxies bool
	// ExtraFlags are given to every node, after the harness's own.
	ExtraFlags []string
	// ReadyTimeout bounds Start's wait; default DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Bin is the binary each node runs; default cmd/flashsale, built by
	// serverproc.Build. The harness's own tests give a stand-in.
	Bin string
}

// File is the cluster file's shape, as docs/cluster.md gives it.
type File struct {
	Partitions int         `json:"partitions"`
	Nodes      []FileEntry `json:"nodes"`
}

// FileEntry is one node of the cluster file.
type FileEntry struct {
	ID   int    `json:"id"`
	HTTP string `json:"http"`
	Raft string `json:"raft"`
}

// Info is the answer of GET /cluster.
type Info struct {
	NodeID     int             `json:"node_id"`
	Nodes      []NodeInfo      `json:"nodes"`
	Partitions []PartitionInfo `json:"partitions"`
}

// NodeInfo is one node as GET /cluster reports it.
type NodeInfo struct {
	ID        int    `json:"id"`
	HTTP      string `json:"http"`
	Raft      string `json:"raft"`
	Reachable bool   `json:"reachable"`
}

// PartitionInfo is one partition as GET /cluster reports it; Leader 0
// means none known.
type PartitionInfo struct {
	ID           int    `json:"id"`
	Leader       int    `json:"leader"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
}

// State is the answer of GET /cluster/state/{partition}: the digest of a
// replica's state of the partition as of applied_index.
type State struct {
	Partition    int    `json:"partition"`
	AppliedIndex uint64 `json:"applied_index"`
	Digest       string `json:"digest"`
}

// node is one member of the cluster and its current process.
type node struct {
	id      int
	http    string // listen address, 127.0.0.1:port
	raft    string
	dataDir string
	flags   []string // everything after --addr/--data-dir/--log-level of serverproc

	mu  sync.Mutex
	srv *serverproc.Server // the newest process; nil before the first start
	up  bool               // started and not killed by the harness
}

// Cluster is a running cluster of flashsale processes on loopback, one per
// node, each on its own data directory, all reading one cluster file. Every
// process is killed when the test ends.
type Cluster struct {
	t          testing.TB
	bin        string
	dir        string
	file       string
	partitions int
	opt        Options
	nodes      []*node           // by id-1
	links      map[[2]int]*Proxy // by (lower id, higher id)
	hc         *http.Client
}

// Start builds the server (once per test binary), writes a cluster file
// with fresh loopback ports in a temporary directory, starts every node on
// DIR/node<id>, and waits until every node is healthy and every partition
// has a leader. It fails the test (with the nodes' output) if that does not
// happen within opt.ReadyTimeout.
func Start(t testing.TB, opt Options) *Cluster {
	t.Helper()
	if opt.Nodes == 0 {
		opt.Nodes = defaultNodes
	}
	if opt.Partitions == 0 {
		opt.Partitions = defaultPartitions
	}
	if opt.ReadyTimeout == 0 {
		opt.ReadyTimeout = DefaultReadyTimeout
	}
	if opt.Bin == "" {
		opt.Bin = serverproc.Build(t)
	}
	c := &Cluster{t: t, bin: opt.Bin, dir: t.TempDir(), partitions: opt.Partitions, opt: opt,
		links: map[[2]int]*Proxy{},
		hc:    &http.Client{Timeout: probeTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}}
	t.Cleanup(c.hc.CloseIdleConnections)
	ports := freeLoopbackPorts(t, 2*opt.Nodes)
	f := File{Partitions: opt.Partitions}
	for i := 0; i < opt.Nodes; i++ {
		n := &node{id: i + 1, http: ports[2*i], raft: ports[2*i+1],
			dataDir: filepath.Join(c.dir, fmt.Sprintf("node%d", i+1))}
		c.nodes = append(c.nodes, n)
		f.Nodes = append(f.Nodes, FileEntry{ID: n.id, HTTP: n.http, Raft: n.raft})
	}
	c.file = filepath.Join(c.dir, "cluster.json")
	writeJSON(t, c.file, f)
	var seedFlags []string
	if opt.Seed != nil {
		seed := filepath.Join(c.dir, "seed.json")
		if err := os.WriteFile(seed, opt.Seed, 0o600); err != nil {
			t.Fatal(err)
		}
		seedFlags = []string{"--seed", seed}
	}
	if opt.Proxies {
		for _, lo := range c.nodes {
			for _, hi := range c.nodes[lo.id:] {
				c.links[[2]int{lo.id, hi.id}] = NewProxy(t, hi.raft)
			}
		}
	}
	for _, n := range c.nodes {
		n.flags = append([]string{"--cluster", c.file, "--node-id", strconv.Itoa(n.id)}, seedFlags...)
		var peers []string
		for _, hi := range c.nodes[n.id:] {
			if p := c.links[[2]int{n.id, hi.id}]; p != nil {
				peers = append(peers, fmt.Sprintf("%d=%s", hi.id, p.Addr()))
			}
		}
		if len(peers) > 0 {
			n.flags = append(n.flags, "--raft-peer-addrs", strings.Join(peers, ","))
		}
		n.flags = append(n.flags, opt.ExtraFlags...)
	}
	for _, n := range c.nodes {
		c.launch(n)
	}
	if err := c.WaitReady(opt.ReadyTimeout); err != nil {
		t.Fatalf("cluster: not ready after start: %v", err)
	}
	return c
}

// launch starts n's process without waiting for it.
func (c *Cluster) launch(n *node) {
	c.t.Helper()
	s := serverproc.LaunchAt(c.t, c.bin, n.http, n.dataDir, n.flags...)
	n.mu.Lock()
	n.srv, n.up = s, true
	n.mu.Unlock()
}

func (c *Cluster) node(id int) *node {
	c.t.Helper()
	if id < 1 || id > len(c.nodes) {
		c.t.Fatalf("cluster: no node %d (nodes 1..%d)", id, len(c.nodes))
	}
	return c.nodes[id-1]
}

// IDs are the node ids, 1..Nodes.
func (c *Cluster) IDs() []int {
	ids := make([]int, len(c.nodes))
	for i := range c.nodes {
		ids[i] = i + 1
	}
	return ids
}

// Partitions is the partition count of the cluster file.
func (c *Cluster) Partitions() int { return c.partitions }

// PartitionOfProduct is the partition that product id lives in.
func (c *Cluster) PartitionOfProduct(id int64) int { return int(id % int64(c.partitions)) }

// FilePath is the cluster file every node was started with.
func (c *Cluster) FilePath() string { return c.file }

// Dir is the temporary directory holding the cluster file and the nodes'
// data directories.
func (c *Cluster) Dir() string { return c.dir }

// Bin is the server binary.
func (c *Cluster) Bin() string { return c.bin }

// Node is node id's newest process.
func (c *Cluster) Node(id int) *serverproc.Server {
	n := c.node(id)
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

// URL is node id's base URL, http://127.0.0.1:port; it stays the same
// across restarts.
func (c *Cluster) URL(id int) string { return "http://" + c.node(id).http }

// HTTPAddr is node id's http entry of the cluster file.
func (c *Cluster) HTTPAddr(id int) string { return c.node(id).http }

// DataDir is node id's data directory.
func (c *Cluster) DataDir(id int) string { return c.node(id).dataDir }

// Flags are the flags node id is started with after serverproc's own
// --addr, --data-dir and --log-level.
func (c *Cluster) Flags(id int) []string { return slices.Clone(c.node(id).flags) }

// Up reports whether node id is running as far as the harness knows:
// started, and neither killed through the harness nor exited.
func (c *Cluster) Up(id int) bool {
	n := c.node(id)
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.up {
		return false
	}
	_, gone := exited(n.srv)
	return !gone
}

// LiveIDs are the ids of the nodes that are Up.
func (c *Cluster) LiveIDs() []int {
	var ids []int
	for _, id := range c.IDs() {
		if c.Up(id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// Kill9 kills node id with SIGKILL and waits until it is gone.
func (c *Cluster) Kill9(id int) {
	n := c.node(id)
	n.mu.Lock()
	s := n.srv
	n.up = false
	n.mu.Unlock()
	s.Kill9()
}

// Restart starts node id again with the same flags and data directory (it
// must be down: killed, or exited) and waits until the cluster is ready
// again (see WaitReady), failing the test if it is not within the
// Options' ReadyTimeout.
func (c *Cluster) Restart(id int) {
	c.t.Helper()
	n := c.node(id)
	if c.Up(id) {
		c.t.Fatalf("cluster: Restart(%d): node %d is still running", id, id)
	}
	c.launch(n)
	if err := c.WaitReady(c.opt.ReadyTimeout); err != nil {
		c.t.Fatalf("cluster: not ready after restarting node %d: %v", id, err)
	}
}

// Link is the proxy on the Raft link between nodes i and j (in either
// order). It fails the test if the cluster was started without Proxies.
func (c *Cluster) Link(i, j int) *Proxy {
	c.t.Helper()
	if i > j {
		i, j = j, i
	}
	p := c.links[[2]int{i, j}]
	if p == nil {
		c.t.Fatalf("cluster: no proxy between nodes %d and %d (Options.Proxies is %v)", i, j, c.opt.Proxies)
	}
	return p
}

// CutOneWay makes the link between nodes from and to discard what from
// sends to to, while to's bytes still reach from. (The lower id dials, so
// which Direction that is depends on the ids.)
func (c *Cluster) CutOneWay(from, to int) {
	c.t.Helper()
	if from < to {
		c.Link(from, to).CutOneWay(DialerToTarget)
	} else {
		c.Link(from, to).CutOneWay(TargetToDialer)
	}
}

// LinksOf are the proxies of every link of node id.
func (c *Cluster) LinksOf(id int) []*Proxy {
	c.t.Helper()
	var ps []*Proxy
	for _, other := range c.IDs() {
		if other != id {
			ps = append(ps, c.Link(id, other))
		}
	}
	return ps
}

// get fetches url into out; it returns the status code.
func (c *Cluster) get(url string, out any) (int, error) {
	resp, err := c.hc.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return resp.StatusCode, fmt.Errorf("GET %s: %v: %s", url, err, body)
		}
	}
	return resp.StatusCode, nil
}

// Info asks node id for GET /cluster.
func (c *Cluster) Info(id int) (Info, error) {
	var info Info
	status, err := c.get(c.URL(id)+"/cluster", &info)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("GET /cluster of node %d: %d", id, status)
	}
	return info, err
}

// StateOf asks node id for GET /cluster/state/{partition}.
func (c *Cluster) StateOf(id, partition int) (State, error) {
	var st State
	status, err := c.get(fmt.Sprintf("%s/cluster/state/%d", c.URL(id), partition), &st)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("GET /cluster/state/%d of node %d: %d", partition, id, status)
	}
	return st, err
}

// Healthy reports whether node id's GET /healthz answers 200.
func (c *Cluster) Healthy(id int) bool {
	status, err := c.get(c.URL(id)+"/healthz", nil)
	return err == nil && status == http.StatusOK
}

// Leader is the leader of partition that the live nodes report, the one
// reported with the highest term; 0 if no live node reports a live leader.
func (c *Cluster) Leader(partition int) int {
	leader, term := 0, uint64(0)
	for _, id := range c.LiveIDs() {
		info, err := c.Info(id)
		if err != nil {
			continue
		}
		for _, p := range info.Partitions {
			if p.ID == partition && p.Leader != 0 && p.Term >= term && c.Up(p.Leader) {
				leader, term = p.Leader, p.Term
			}
		}
	}
	return leader
}

// WaitLeader waits up to timeout for partition to have a leader other than
// not (0: any) and returns it, or 0 if none came.
func (c *Cluster) WaitLeader(partition, not int, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		if l := c.Leader(partition); l != 0 && l != not {
			return l
		}
		if time.Now().After(deadline) {
			return 0
		}
		time.Sleep(pollInterval)
	}
}

// WaitReady waits up to timeout until every live node answers /healthz
// with 200 and its /cluster names a leader for every partition. The error
// says, per node, what was missing at the end.
func (c *Cluster) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var missing []string
		for _, id := range c.LiveIDs() {
			if why := c.notReady(id); why != "" {
				missing = append(missing, fmt.Sprintf("node %d: %s", id, why))
			}
		}
		for _, n := range c.nodes {
			n.mu.Lock()
			s, up := n.srv, n.up
			n.mu.Unlock()
			if up {
				if code, gone := exited(s); gone {
					return fmt.Errorf("node %d exited with code %d; output:\n%s", n.id, code, s.Output())
				}
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %s", timeout, strings.Join(missing, "; "))
		}
		time.Sleep(pollInterval)
	}
}

// notReady says why node id is not ready, "" if it is.
func (c *Cluster) notReady(id int) string {
	if !c.Healthy(id) {
		return "/healthz is not 200"
	}
	info, err := c.Info(id)
	if err != nil {
		return err.Error()
	}
	if len(info.Partitions) != c.partitions {
		return fmt.Sprintf("/cluster lists %d partitions, want %d", len(info.Partitions), c.partitions)
	}
	for _, p := range info.Partitions {
		if p.Leader == 0 {
			return fmt.Sprintf("partition %d has no leader", p.ID)
		}
	}
	// A partition's first leader writes its part of the seed once it
	// leads: until that is committed, a linearizable read through any
	// node rightly does not see those products yet.
	if want := c.seededProducts(); want > 0 {
		var list struct {
			Products []json.RawMessage `json:"products"`
		}
		if status, err := c.get(c.URL(id)+"/api/products", &list); err != nil || status != http.StatusOK {
			return fmt.Sprintf("GET /api/products: %d %v", status, err)
		}
		if len(list.Products) < want {
			return fmt.Sprintf("GET /api/products lists %d products, the seed has %d", len(list.Products), want)
		}
	}
	return ""
}

// seededProducts is the number of products in the seed file (0: none
// given). It is 0 too for nodes run with --fault-ack-uncommitted: they
// never replicate, so a partition's seed stays on its first leader and no
// other node ever lists it.
func (c *Cluster) seededProducts() int {
	var seed []json.RawMessage
	if c.opt.Seed == nil || json.Unmarshal(c.opt.Seed, &seed) != nil || slices.Contains(c.opt.ExtraFlags, "--fault-ack-uncommitted") {
		return 0
	}
	return len(seed)
}

// Converged waits up to timeout until, for every partition, every live
// node reports the same applied_index and digest in GET
// /cluster/state/{partition}. The error lists the differing replicas.
func (c *Cluster) Converged(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		diffs := c.divergence()
		if len(diffs) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replicas not converged after %v: %s", timeout, strings.Join(diffs, "; "))
		}
		time.Sleep(pollInterval)
	}
}

// WaitConverged is Converged that fails the test on a timeout.
func (c *Cluster) WaitConverged(timeout time.Duration) {
	c.t.Helper()
	if err := c.Converged(timeout); err != nil {
		c.t.Fatalf("cluster: %v", err)
	}
}

// divergence describes every partition whose live replicas differ (or
// could not be read) now.
func (c *Cluster) divergence() []string {
	live := c.LiveIDs()
	var diffs []string
	for p := 0; p < c.partitions; p++ {
		var states []string
		seen := map[State]bool{}
		for _, id := range live {
			st, err := c.StateOf(id, p)
			if err != nil {
				states = append(states, fmt.Sprintf("node %d: %v", id, err))
				seen[State{Digest: "error " + strconv.Itoa(id)}] = true
				continue
			}
			st.Partition = p
			seen[st] = true
			states = append(states, fmt.Sprintf("node %d at %d digest %s", id, st.AppliedIndex, st.Digest))
		}
		if len(seen) != 1 {
			diffs = append(diffs, fmt.Sprintf("partition %d: %s", p, strings.Join(states, ", ")))
		}
	}
	return diffs
}

// freeLoopbackPorts returns n distinct 127.0.0.1:<port> addresses that were
// free a moment ago; all are held open together while picking, so none
// repeats.
func freeLoopbackPorts(t testing.TB, n int) []string {
	t.Helper()
	var addrs []string
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("cluster: finding a free port: %v", err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}

func writeJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// WriteFile writes a cluster file to path, for tests that start nodes with
// a file of their own (a changed one, to see it refused).
func WriteFile(t testing.TB, path string, f File) { writeJSON(t, path, f) }

// ReadFile reads the cluster file the cluster was started with.
func (c *Cluster) ReadFile() File {
	c.t.Helper()
	b, err := os.ReadFile(c.file)
	if err != nil {
		c.t.Fatal(err)
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		c.t.Fatal(err)
	}
	return f
}

// exited reports whether s's process has exited. serverproc offers no
// non-blocking check; a wait of a millisecond is one (an exited process is
// seen at once, a running one costs the millisecond).
func exited(s *serverproc.Server) (code int, ok bool) {
	code, err := s.WaitExit(time.Millisecond)
	return code, err == nil
}
