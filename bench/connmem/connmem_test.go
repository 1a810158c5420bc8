package connmem

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/bench/serverproc"
)

func TestMain(m *testing.M) {
	code := m.Run()
	serverproc.Cleanup()
	os.Exit(code)
}

// Sizes of the measurement. connectionsMax stays under the 20,000 open
// files a process may have here (client and server are two processes).
const (
	connectionsMax = 15_000
	// sourceAddrs spreads the connections over 127.0.0.1..127.0.0.N, so
	// that neither the kernel's ephemeral ports nor a per-IP limit of the
	// server is what a run measures.
	sourceAddrs  = 8
	busyDuration = 3 * time.Second
	dialTimeout  = 5 * time.Second
	settleDelay  = 500 * time.Millisecond
)

var request = []byte("GET /api/products/1 HTTP/1.1\r\nHost: bench\r\n\r\n")

// BenchmarkConnectionMemory reports the server's resident memory per
// connection, for connections that made one request and sit idle, and for
// connections that send requests back to back.
func BenchmarkConnectionMemory(b *testing.B) {
	for _, n := range []int{5_000, connectionsMax} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			for range b.N {
				measure(b, n)
			}
		})
	}
}

func measure(b *testing.B, n int) {
	bin := serverproc.Build(b)
	srv := serverproc.Start(b, bin, b.TempDir())
	addr := strings.TrimPrefix(srv.URL(), "http://")
	warm := dialAll(b, addr, 64)
	roundTrip(b, warm)
	closeAll(warm)
	time.Sleep(settleDelay)
	base := rssKiB(b, srv.Pid())

	conns := dialAll(b, addr, n)
	defer closeAll(conns)
	roundTrip(b, conns)
	time.Sleep(settleDelay)
	idle := rssKiB(b, srv.Pid())

	peak := idle
	stop := time.Now().Add(busyDuration)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var requests int
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := 0
			for time.Now().Before(stop) {
				if err := c.do(); err != nil {
					b.Error(err)
					return
				}
				k++
			}
			mu.Lock()
			requests += k
			mu.Unlock()
		}()
	}
	for time.Now().Before(stop) {
		time.Sleep(100 * time.Millisecond)
		peak = max(peak, rssKiB(b, srv.Pid()))
	}
	wg.Wait()
	b.ReportMetric(float64(idle-base)/float64(n), "KiB/idle-conn")
	b.ReportMetric(float64(peak-base)/float64(n), "KiB/busy-conn")
	b.ReportMetric(float64(requests)/busyDuration.Seconds(), "busy-req/s")
	b.Logf("%d connections: server RSS %d KiB before, %d KiB idle, %d KiB peak busy (%d requests)", n, base, idle, peak, requests)
}

type conn struct {
	nc net.Conn
	br *bufio.Reader
}

// do sends one request and reads its answer.
func (c *conn) do() error {
	if _, err := c.nc.Write(request); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

func dialAll(b *testing.B, addr string, n int) []*conn {
	conns := make([]*conn, 0, n)
	for i := range n {
		d := net.Dialer{Timeout: dialTimeout, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%sourceAddrs))}}
		nc, err := d.Dial("tcp", addr)
		if err != nil {
			closeAll(conns)
			b.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, &conn{nc: nc, br: bufio.NewReaderSize(nc, 1024)})
	}
	return conns
}

// roundTrip makes one request on every connection, so the server has
// read, answered and parked each of them.
func roundTrip(b *testing.B, conns []*conn) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, c := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := c.do(); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
}

func closeAll(conns []*conn) {
	for _, c := range conns {
		c.nc.Close()
	}
}

// rssKiB is VmRSS of process pid.
func rssKiB(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := strings.Fields(string(v))
			kib, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kib
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
