// Command fakenode stands in for a flashsale cluster node in the tests of
// bench/cluster's harness itself, so that the harness is tested before (and
// independently of) the real cluster mode. It speaks only the harness's
// part of the cluster contract: the flags, GET /healthz, GET /cluster and
// GET /cluster/state/{partition}, and a Raft-like link between every pair
// of nodes that carries heartbeats both ways, dialled by the lower id.
//
// Leadership is a pure function of what a node can reach: a partition p
// has a leader only while the node reaches a majority (itself included),
// and the leader is node p mod N + 1 if reachable, else the lowest
// reachable id. The state digest of a partition is a hash of the partition
// number and of the file "digest" in the data directory, if any, so a test
// can make one replica differ. A data directory belongs to the first node
// id started on it; another id on it exits with code 2, as does an --addr
// that is not the node's http entry.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	beatEvery     = 50 * time.Millisecond
	reachableFor  = 400 * time.Millisecond // a peer heard from this recently is reachable
	redialEvery   = 100 * time.Millisecond
	appliedIndex  = 7 // every replica reports this applied index
	refusalStatus = 2
)

type entry struct {
	ID   int    `json:"id"`
	HTTP string `json:"http"`
	Raft string `json:"raft"`
}

type clusterFile struct {
	Partitions int     `json:"partitions"`
	Nodes      []entry `json:"nodes"`
}

type node struct {
	self    entry
	file    clusterFile
	dataDir string
	mu      sync.Mutex
	seen    map[int]time.Time // peer id → last heartbeat
}

func refuse(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "fakenode: "+format+"\n", args...)
	os.Exit(refusalStatus)
}

func main() {
	fs := flag.NewFlagSet("fakenode", flag.ExitOnError)
	clusterPath := fs.String("cluster", "", "cluster file")
	id := fs.Int("node-id", 0, "node id")
	dataDir := fs.String("data-dir", "", "data directory")
	addr := fs.String("addr", "", "http address")
	raftListen := fs.String("raft-listen", "", "raft listen address")
	peerAddrs := fs.String("raft-peer-addrs", "", "id=addr,...")
	fs.String("seed", "", "ignored")
	fs.String("log-level", "", "ignored")
	fs.String("hold-ttl", "", "ignored")
	fs.String("order-ttl", "", "ignored")
	_ = fs.Parse(os.Args[1:])

	b, err := os.ReadFile(*clusterPath)
	if err != nil {
		refuse("%v", err)
	}
	n := &node{dataDir: *dataDir, seen: map[int]time.Time{}}
	if err := json.Unmarshal(b, &n.file); err != nil {
		refuse("%s: %v", *clusterPath, err)
	}
	for _, e := range n.file.Nodes {
		if e.ID == *id {
			n.self = e
		}
	}
	if n.self.ID == 0 {
		refuse("node id %d is not in %s", *id, *clusterPath)
	}
	if *addr != "" && *addr != n.self.HTTP {
		refuse("--addr %s is not node %d's http entry %s", *addr, *id, n.self.HTTP)
	}
	claimDataDir(*dataDir, *id, n.file.Partitions)
	dial := map[int]string{}
	for _, e := range n.file.Nodes {
		dial[e.ID] = e.Raft
	}
	for _, kv := range strings.Split(*peerAddrs, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			pid, _ := strconv.Atoi(k)
			dial[pid] = v
		}
	}
	listen := n.self.Raft
	if *raftListen != "" {
		listen = *raftListen
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		refuse("raft listen %s: %v", listen, err)
	}
	go n.acceptPeers(ln)
	for _, e := range n.file.Nodes {
		if e.ID > n.self.ID {
			go n.dialPeer(e.ID, dial[e.ID])
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", n.healthz)
	mux.HandleFunc("GET /cluster", n.cluster)
	mux.HandleFunc("GET /cluster/state/{partition}", n.state)
	if err := http.ListenAndServe(n.self.HTTP, mux); err != nil {
		fmt.Fprintf(os.Stderr, "fakenode: cannot listen on %s: %v\n", n.self.HTTP, err)
		os.Exit(1)
	}
}

// claimDataDir records the node id and partition count in the data
// directory on first use and refuses another later.
func claimDataDir(dir string, id, partitions int) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		refuse("%v", err)
	}
	path := filepath.Join(dir, "fakenode-identity")
	want := fmt.Sprintf("%d %d", id, partitions)
	if b, err := os.ReadFile(path); err == nil {
		if string(b) != want {
			refuse("data directory %s belongs to node/partitions %q, not %q", dir, b, want)
		}
		return
	}
	if err := os.WriteFile(path, []byte(want), 0o600); err != nil {
		refuse("%v", err)
	}
}

// link exchanges heartbeats on one connection until it fails.
func (n *node) link(c net.Conn, peer int) {
	defer c.Close()
	go func() {
		for {
			if _, err := fmt.Fprintf(c, "%d\n", n.self.ID); err != nil {
				c.Close()
				return
			}
			time.Sleep(beatEvery)
		}
	}()
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		if got, err := strconv.Atoi(sc.Text()); err == nil && (peer == 0 || got == peer) {
			peer = got
			n.mu.Lock()
			n.seen[got] = time.Now()
			n.mu.Unlock()
		}
	}
}

func (n *node) acceptPeers(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go n.link(c, 0)
	}
}

func (n *node) dialPeer(peer int, addr string) {
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			n.link(c, peer)
		}
		time.Sleep(redialEvery)
	}
}

func (n *node) reachable(id int) bool {
	if id == n.self.ID {
		return true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return time.Since(n.seen[id]) < reachableFor
}

func (n *node) leader(p int) int {
	var ids []int
	for _, e := range n.file.Nodes {
		if n.reachable(e.ID) {
			ids = append(ids, e.ID)
		}
	}
	if len(ids) <= len(n.file.Nodes)/2 {
		return 0
	}
	preferred := p%len(n.file.Nodes) + 1
	for _, id := range ids {
		if id == preferred {
			return id
		}
	}
	return ids[0]
}

func (n *node) healthz(w http.ResponseWriter, _ *http.Request) {
	for p := 0; p < n.file.Partitions; p++ {
		if n.leader(p) == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":"unavailable","message":"no majority"}`)
			return
		}
	}
	fmt.Fprint(w, `{"status":"ok"}`)
}

func (n *node) cluster(w http.ResponseWriter, _ *http.Request) {
	type nodeInfo struct {
		entry
		Reachable bool `json:"reachable"`
	}
	type partInfo struct {
		ID           int `json:"id"`
		Leader       int `json:"leader"`
		Term         int `json:"term"`
		CommitIndex  int `json:"commit_index"`
		AppliedIndex int `json:"applied_index"`
	}
	out := struct {
		NodeID     int        `json:"node_id"`
		Nodes      []nodeInfo `json:"nodes"`
		Partitions []partInfo `json:"partitions"`
	}{NodeID: n.self.ID}
	for _, e := range n.file.Nodes {
		out.Nodes = append(out.Nodes, nodeInfo{entry: e, Reachable: n.reachable(e.ID)})
	}
	for p := 0; p < n.file.Partitions; p++ {
		out.Partitions = append(out.Partitions, partInfo{ID: p, Leader: n.leader(p), Term: 1, CommitIndex: appliedIndex, AppliedIndex: appliedIndex})
	}
	_ = json.NewEncoder(w).Encode(out)
}

func (n *node) state(w http.ResponseWriter, r *http.Request) {
	p, err := strconv.Atoi(r.PathValue("partition"))
	if err != nil || p < 0 || p >= n.file.Partitions {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":"not_found"}`)
		return
	}
	extra, _ := os.ReadFile(filepath.Join(n.dataDir, "digest"))
	sum := sha256.Sum256(fmt.Appendf(nil, "%d/%s", p, extra))
	_ = json.NewEncoder(w).Encode(map[string]any{"partition": p, "applied_index": appliedIndex, "digest": hex.EncodeToString(sum[:])})
}
