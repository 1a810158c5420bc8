package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The cluster file (--cluster), identical on every node:
//
//	{"partitions": 6, "nodes": [{"id": 1, "http": "127.0.0.1:8081", "raft": "127.0.0.1:9081"}, ...]}
type clusterFile struct {
	Partitions int           `json:"partitions"`
	Nodes      []clusterNode `json:"nodes"`
}

type clusterNode struct {
	ID   uint64 `json:"id"`
	HTTP string `json:"http"`
	Raft string `json:"raft"`
}

// Limits of a cluster file: 3 or 5 nodes (a majority survives one or two
// failures; 4 tolerates no more than 3, and more than 5 adds latency to
// every commit), 1 to 64 partitions.
const (
	clusterPartitionsMax = 64
	clusterFileBytesMax  = 64 << 10
)

// errUsage marks start-up refusals that exit with code 2: a bad cluster
// file, an unknown node id, a data directory of another node or cluster.
var errUsage = errors.New("refused")

func usageErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

func loadClusterFile(path string) (*clusterFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageErrorf("--cluster: %v", err)
	}
	if len(b) > clusterFileBytesMax {
		return nil, usageErrorf("--cluster %s: larger than %d bytes", path, clusterFileBytesMax)
	}
	var cf clusterFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cf); err != nil {
		return nil, usageErrorf("--cluster %s: %v", path, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, usageErrorf("--cluster %s: data after the JSON object", path)
	}
	if err := cf.check(); err != nil {
		return nil, usageErrorf("--cluster %s: %v", path, err)
	}
	slices.SortFunc(cf.Nodes, func(a, b clusterNode) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return &cf, nil
}

func (cf *clusterFile) check() error {
	if cf.Partitions < 1 || cf.Partitions > clusterPartitionsMax {
		return fmt.Errorf("partitions is %d, want 1 to %d", cf.Partitions, clusterPartitionsMax)
	}
	if n := len(cf.Nodes); n != 3 && n != 5 {
		return fmt.Errorf("%d nodes, want 3 or 5", n)
	}
	ids := map[uint64]bool{}
	addrs := map[string]bool{}
	for _, n := range cf.Nodes {
		if n.ID == 0 {
			return errors.New("a node id must be a positive integer")
		}
		if ids[n.ID] {
			return fmt.Errorf("node id %d appears twice", n.ID)
		}
		ids[n.ID] = true
		for _, a := range []string{n.HTTP, n.Raft} {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return fmt.Errorf("node %d: address %q: %v", n.ID, a, err)
			}
			if addrs[a] {
				return fmt.Errorf("address %s appears twice", a)
			}
			addrs[a] = true
		}
	}
	return nil
}

func (cf *clusterFile) node(id uint64) (clusterNode, bool) {
	for _, n := range cf.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return clusterNode{}, false
}

func (cf *clusterFile) ids() []uint64 {
	out := make([]uint64, len(cf.Nodes))
	for i, n := range cf.Nodes {
		out[i] = n.ID
	}
	return out
}

// canonical is the cluster's identity: partitions and nodes, sorted, in
// one fixed encoding, whatever the file's layout.
func (cf *clusterFile) canonical() []byte {
	b, _ := json.Marshal(clusterFile{Partitions: cf.Partitions, Nodes: cf.Nodes}) // plain structs: cannot fail
	return b
}

// id is the 64-bit cluster id the peer transport's handshake checks.
func (cf *clusterFile) id() uint64 {
	sum := sha256.Sum256(cf.canonical())
	return binary.BigEndian.Uint64(sum[:8])
}

// identity is what a node's data directory remembers of its cluster, so
// that a start with another cluster file, node id or data directory is
// refused before anything is written.
type identity struct {
	NodeID  uint64          `json:"node_id"`
	Cluster json.RawMessage `json:"cluster"`
}

const identityFile = "cluster.json"

// claimDataDir checks (or, in a data directory that holds nothing yet,
// records) that dataDir belongs to node id of cf.
func claimDataDir(dataDir string, cf *clusterFile, id uint64) error {
	path := filepath.Join(dataDir, identityFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		var have identity
		if err := json.Unmarshal(b, &have); err != nil {
			return usageErrorf("%s is damaged: %v", path, err)
		}
		if have.NodeID != id {
			return usageErrorf("%s belongs to node %d, not to node %d: each node needs its own data directory", dataDir, have.NodeID, id)
		}
		if !bytes.Equal(have.Cluster, cf.canonical()) {
			return usageErrorf("%s was made for another cluster (%s); the node set and the partition count are fixed when a cluster first starts", dataDir, have.Cluster)
		}
		return nil
	case !errors.Is(err, os.ErrNotExist):
		return err
	}
	if entries, err := os.ReadDir(dataDir); err == nil && len(entries) > 0 {
		names := make([]string, 0, len(entries))
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return usageErrorf("%s is not empty (%s) but holds no cluster identity: it is a single node's or another program's directory", dataDir, strings.Join(names, ", "))
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return err
	}
	b, err = json.Marshal(identity{NodeID: id, Cluster: cf.canonical()})
	if err != nil {
		return err
	}
	return writeFileSync(path, b)
}

// writeFileSync writes path durably: a temporary file, fsynced, renamed,
// and the directory fsynced.
func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// parsePeerAddrs reads --raft-peer-addrs: "2=host:port,3=host:port".
func parsePeerAddrs(s string, cf *clusterFile) (map[uint64]string, error) {
	out := map[uint64]string{}
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		id, err := strconv.ParseUint(k, 10, 64)
		if !ok || err != nil {
			return nil, usageErrorf("--raft-peer-addrs: %q is not ID=HOST:PORT", part)
		}
		if _, known := cf.node(id); !known {
			return nil, usageErrorf("--raft-peer-addrs: node %d is not in the cluster file", id)
		}
		if _, _, err := net.SplitHostPort(v); err != nil {
			return nil, usageErrorf("--raft-peer-addrs: %q: %v", part, err)
		}
		out[id] = v
	}
	return out, nil
}
