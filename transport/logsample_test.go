package transport

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// warnLinesMax is the most lines one kind of client-caused warning may
// write in elapsed: clientWarnLinesPerSecond in every second begun.
func warnLinesMax(elapsed time.Duration) int {
	return clientWarnLinesPerSecond * (int(elapsed/time.Second) + 2)
}

// TestClientCausedWarningsAreSampled: 10,000 of each warning a client can
// cause — a request refused before routing, a message of fasthttp's own, a
// refund needed, a 503 — write at most clientWarnLinesPerSecond lines a
// second each, so nobody can flood the log.
func TestClientCausedWarningsAreSampled(t *testing.T) {
	const n = 10_000
	logs := &syncBuffer{}
	log := zerolog.New(logs)
	cfg := engine.DefaultConfig()
	cfg.Journal = &engine.MemJournal{}
	eng := engine.New(cfg)
	srv := New(eng, Options{Logger: log})
	hs := srv.HTTPServer()
	refund := RefundLogger(log)
	rt := &route{name: "POST /api/holds"}

	var ctx fasthttp.RequestCtx
	start := time.Now()
	for i := 0; i < n; i++ {
		ctx.Response.Reset()
		srv.handleRequestError(&ctx, errors.New("malformed"))
		hs.Logger.Printf("error when serving connection %q: %v", "1.2.3.4:5", "broken pipe")
		refund(uint64(i+1), 1)
		srv.logAccess(rt, &ctx, 503, time.Millisecond)
	}
	elapsed := time.Since(start)
	text := logs.String()
	for _, msg := range []string{"request refused before routing", `"component":"fasthttp"`, "refund needed", "request refused for now"} {
		got := strings.Count(text, msg)
		if got < 1 || got > warnLinesMax(elapsed) {
			t.Errorf("%d warnings %q wrote %d lines in %v, want 1 to %d", n, msg, got, elapsed, warnLinesMax(elapsed))
		}
	}
	if lines := strings.Count(text, "\n"); lines > 4*warnLinesMax(elapsed) {
		t.Errorf("%d lines in all", lines)
	}
}

// TestRefusedRequestsOverHTTPAreSampled: malformed requests sent over
// loopback, each on its own connection, are each answered 400 but write at
// most clientWarnLinesPerSecond lines a second.
func TestRefusedRequestsOverHTTPAreSampled(t *testing.T) {
	ts := startServer(t, nil)
	const n = 500
	start := time.Now()
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(ts.base, "http://"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("GET /api/products HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		status, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || !strings.Contains(status, " 400 ") {
			t.Fatalf("request %d: %q, %v", i, status, err)
		}
	}
	elapsed := time.Since(start)
	got := strings.Count(ts.logs.String(), "request refused before routing")
	if got < 1 || got > warnLinesMax(elapsed) {
		t.Fatalf("%d refused requests wrote %d lines in %v, want 1 to %d", n, got, elapsed, warnLinesMax(elapsed))
	}
}
