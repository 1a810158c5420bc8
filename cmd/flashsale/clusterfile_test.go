package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const threeNodes = `{"partitions": 3, "nodes": [
 {"id": 1, "http": "127.0.0.1:18081", "raft": "127.0.0.1:19081"},
 {"id": 2, "http": "127.0.0.1:18082", "raft": "127.0.0.1:19082"},
 {"id": 3, "http": "127.0.0.1:18083", "raft": "127.0.0.1:19083"}]}`

func writeClusterFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cluster.json")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestClusterFileRefusals(t *testing.T) {
	if _, err := loadClusterFile(writeClusterFile(t, threeNodes)); err != nil {
		t.Fatalf("the valid file is refused: %v", err)
	}
	for name, text := range map[string]string{
		"two nodes":        `{"partitions": 1, "nodes": [{"id": 1, "http": "a:1", "raft": "a:2"}, {"id": 2, "http": "b:1", "raft": "b:2"}]}`,
		"no partitions":    strings.Replace(threeNodes, `"partitions": 3`, `"partitions": 0`, 1),
		"65 partitions":    strings.Replace(threeNodes, `"partitions": 3`, `"partitions": 65`, 1),
		"duplicate id":     strings.Replace(threeNodes, `"id": 3`, `"id": 2`, 1),
		"id 0":             strings.Replace(threeNodes, `"id": 3`, `"id": 0`, 1),
		"shared address":   strings.Replace(threeNodes, `19083`, `19082`, 1),
		"bad address":      strings.Replace(threeNodes, `127.0.0.1:19083`, `nowhere`, 1),
		"unknown field":    strings.Replace(threeNodes, `"partitions"`, `"shards": 1, "partitions"`, 1),
		"not json":         `partitions: 3`,
		"trailing garbage": threeNodes + `]`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadClusterFile(writeClusterFile(t, text))
			if !errors.Is(err, errUsage) {
				t.Fatalf("loadClusterFile accepted a bad file (err %v)", err)
			}
		})
	}
}

func TestDataDirBelongsToOneNodeOfOneCluster(t *testing.T) {
	cf, err := loadClusterFile(writeClusterFile(t, threeNodes))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "node1")
	if err := claimDataDir(dir, cf, 1); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	if err := claimDataDir(dir, cf, 1); err != nil {
		t.Fatalf("the same node again: %v", err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, identityFile))
	if err := claimDataDir(dir, cf, 2); !errors.Is(err, errUsage) {
		t.Fatalf("node 2 on node 1's directory: %v, want a refusal", err)
	}
	other, err := loadClusterFile(writeClusterFile(t, strings.Replace(threeNodes, `"partitions": 3`, `"partitions": 4`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := claimDataDir(dir, other, 1); !errors.Is(err, errUsage) {
		t.Fatalf("another partition count on the same directory: %v, want a refusal", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, identityFile)); !bytes.Equal(before, after) {
		t.Fatal("a refused start changed the stored identity")
	}
	single := t.TempDir()
	if err := os.MkdirAll(filepath.Join(single, "wal"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := claimDataDir(single, cf, 1); !errors.Is(err, errUsage) {
		t.Fatalf("a single node's data directory: %v, want a refusal", err)
	}
}

func TestClusterStartRefusalsExitTwo(t *testing.T) {
	path := writeClusterFile(t, threeNodes)
	for name, args := range map[string][]string{
		"unknown node id":    {"--cluster", path, "--node-id", "9"},
		"addr not the nodes": {"--cluster", path, "--node-id", "1", "--addr", "127.0.0.1:1"},
		"no node id":         {"--cluster", path},
		"peer not in file":   {"--cluster", path, "--node-id", "1", "--raft-peer-addrs", "7=127.0.0.1:1"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			var stderr bytes.Buffer
			args := append([]string{"--data-dir", dir, "--log-level", "disabled"}, args...)
			if code := run(context.Background(), args, func(string) string { return "" }, &stderr); code != 2 {
				t.Fatalf("exit code %d, want 2; stderr: %s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), "flashsale:") {
				t.Fatalf("no message on stderr: %q", stderr.String())
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("a refused start wrote its data directory (stat: %v)", err)
			}
		})
	}
}
