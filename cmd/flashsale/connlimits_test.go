package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestConnectionsMaxFollowsTheFileLimit: a --connections-max that the file
// limit cannot serve is lowered, with a warning, so that accept never fails
// for want of descriptors (which would stop the server).
func TestConnectionsMaxFollowsTheFileLimit(t *testing.T) {
	var saved syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &saved); err != nil {
		t.Skip(err)
	}
	if saved.Cur < 2*fdReserveCount {
		t.Skipf("the file limit %d is already below the test's", saved.Cur)
	}
	low := saved
	low.Cur = 2 * fdReserveCount
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skip(err)
	}
	defer func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &saved); err != nil {
			t.Fatal(err)
		}
	}()
	var logs strings.Builder
	log := zerolog.New(&logs)
	lim := connLimits(config{connectionsMax: 65536, connectionsPerIPMax: 4096, connectionsMaxGiven: true}, log, nil)
	if lim.Max != fdReserveCount || !strings.Contains(logs.String(), `"level":"warn"`) || !strings.Contains(logs.String(), "lowered") {
		t.Errorf("file limit %d: --connections-max 65536 became %d; log %q", low.Cur, lim.Max, logs.String())
	}
	logs.Reset()
	lim = connLimits(config{connectionsMax: 65536, connectionsPerIPMax: 4096}, log, nil)
	if lim.Max != fdReserveCount || !strings.Contains(logs.String(), `"level":"info"`) {
		t.Errorf("file limit %d: the default --connections-max became %d; log %q", low.Cur, lim.Max, logs.String())
	}
	logs.Reset()
	if lim := connLimits(config{connectionsMax: 100, connectionsPerIPMax: 4096}, log, nil); lim.Max != 100 || logs.Len() != 0 {
		t.Errorf("--connections-max 100 within the file limit became %d; log %q", lim.Max, logs.String())
	}
}

// TestConnectionLimitsServed: the binary serves with its connection flags:
// one connection more than --connections-max gets a JSON 503 overloaded.
func TestConnectionLimitsServed(t *testing.T) {
	p := startProc(t, nil, "--data-dir", t.TempDir(), "--connections-max", "1")
	addr := strings.TrimPrefix(p.base, "http://")
	held, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := held.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = held.SetReadDeadline(time.Now().Add(5 * time.Second))
	if r, err := http.ReadResponse(bufio.NewReader(held), nil); err != nil || r.StatusCode != 200 {
		t.Fatalf("first connection: %v %v", r, err)
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	r, err := http.ReadResponse(bufio.NewReader(extra), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	if r.StatusCode != 503 || !strings.Contains(string(body), `"error":"overloaded"`) || r.Header.Get("Retry-After") != "1" {
		t.Errorf("second connection: %d %v %s", r.StatusCode, r.Header, body)
	}
	extra.Close()
	held.Close()
	p.stop(syscall.SIGTERM)
}

// TestClusterPeersAreExempt: the cluster file's hosts, literal or named,
// are the addresses exempt from the per-IP limit.
func TestClusterPeersAreExempt(t *testing.T) {
	cf := &clusterFile{Nodes: []clusterNode{
		{ID: 1, HTTP: "10.0.0.1:8080", Raft: "10.0.1.1:9080"},
		{ID: 2, HTTP: "[2001:db8::2]:8080", Raft: "localhost:9080"},
	}}
	got := clusterPeerAddrs(cf, zerolog.Nop())
	for _, want := range []string{"10.0.0.1", "10.0.1.1", "2001:db8::2", "127.0.0.1"} {
		if !slices.Contains(got, netip.MustParseAddr(want)) {
			t.Errorf("%s missing from %v", want, got)
		}
	}
}
