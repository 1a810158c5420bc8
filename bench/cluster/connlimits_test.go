package cluster

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPeersExemptFromPerIPLimit: with --connections-per-ip-max 1, the
// cluster file's host (127.0.0.1, where the peers forward from) is not
// limited per IP: concurrent requests forwarded between the nodes are all
// served, and so are several connections from it; another address gets
// its second connection refused with a JSON 503 overloaded.
func TestPeersExemptFromPerIPLimit(t *testing.T) {
	c := startCluster(t, false, "--connections-per-ip-max", "1")
	addr := c.HTTPAddr(1)

	// Several requests at once through node 1 for every partition: those of
	// the partitions node 1 does not lead are forwarded, over several
	// connections from 127.0.0.1.
	hc := newClient(t, requestTimeout)
	var wg sync.WaitGroup
	errs := make(chan string, 3*c.Partitions()*8)
	for p := range c.Partitions() {
		product := productIn(c, p)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := hc.Do(c.URL(1), "POST", "/api/holds", fmt.Sprintf(`{"product_id":%d,"qty":1}`, product.ID), "")
				if err != nil || r.Status != 201 {
					errs <- fmt.Sprintf("partition %d: %v %v", p, r, err)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}

	dial := func(local string) net.Conn {
		d := net.Dialer{Timeout: requestTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		conn, err := d.Dial("tcp", addr)
		if err != nil {
			t.Skipf("cannot dial from %s (127/8 is not all loopback here?): %v", local, err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	get := func(conn net.Conn) (int, string) {
		_ = conn.SetDeadline(time.Now().Add(requestTimeout))
		if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for i := range 3 {
		if status, body := get(dial("127.0.0.1")); status != 200 {
			t.Fatalf("127.0.0.1, connection %d: %d %s", i, status, body)
		}
	}
	if status, body := get(dial("127.0.0.2")); status != 200 {
		t.Fatalf("127.0.0.2, first connection: %d %s", status, body)
	}
	if status, body := get(dial("127.0.0.2")); status != 503 || !strings.Contains(body, `"error":"overloaded"`) {
		t.Fatalf("127.0.0.2, second connection: %d %s, want 503 overloaded", status, body)
	}
}
