package transport

import (
	"bufio"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// BenchmarkIdleConnectionBytes measures the heap an idle keep-alive
// connection costs the server after one request (the figure behind the
// README's memory bound for --connections-max): b.N connections, each
// served one GET, then left open. Reported as heap-bytes/conn (the client
// side of each connection is included: a bufio.Reader of 4 KiB).
func BenchmarkIdleConnectionBytes(b *testing.B) {
	f := newBenchFixture(b)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := f.srv.HTTPServer()
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(f.srv.Listener(inner)) }()
	conns := make([]net.Conn, 0, b.N)
	b.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
		_ = hs.Shutdown()
		<-done
	})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for range b.N {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := c.Write([]byte("GET /api/products/1 HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			b.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		r, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || r.StatusCode != 200 {
			b.Fatal(r, err)
		}
		r.Body.Close()
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapInuse+after.StackInuse-before.HeapInuse-before.StackInuse)/float64(b.N), "heap-bytes/conn")
}
