package fwdlink

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// leader is a fasthttp server on 127.0.0.1 that upgrades Path to a link
// and serves handler on it.
type leader struct {
	addr  string
	srv   *fasthttp.Server
	mu    sync.Mutex
	conns []net.Conn
}

func startLeader(t *testing.T, handler fasthttp.RequestHandler) *leader {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &leader{addr: ln.Addr().String()}
	l.srv = &fasthttp.Server{KeepHijackedConns: true, Handler: func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) != Path || string(ctx.Request.Header.Peek("Upgrade")) != UpgradeProtocol {
			ctx.SetStatusCode(404)
			return
		}
		ctx.SetStatusCode(fasthttp.StatusSwitchingProtocols)
		ctx.Response.Header.Set("Connection", "Upgrade")
		ctx.Response.Header.Set("Upgrade", UpgradeProtocol)
		ctx.Hijack(func(c net.Conn) {
			l.mu.Lock()
			l.conns = append(l.conns, c)
			l.mu.Unlock()
			Serve(c, handler)
		})
	}}
	go l.srv.Serve(ln)
	t.Cleanup(func() { l.srv.Shutdown(); l.breakLinks() })
	return l
}

// breakLinks closes the leader's side of every link.
func (l *leader) breakLinks() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

func newClient(t *testing.T, addr string) *Client {
	c := &Client{Addr: addr, Header: "X-Test: 1"}
	t.Cleanup(c.Close)
	return c
}

// waitUp waits, bounded, for c's link.
func waitUp(t *testing.T, c *Client) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !c.Up() {
		if err := c.Do(newGet("/warm"), &fasthttp.Response{}, time.Second); err == nil {
			continue
		}
		if time.Now().After(deadline) {
			t.Fatal("the link did not come up within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newGet(path string) *fasthttp.Request {
	req := &fasthttp.Request{}
	req.SetRequestURI("http://leader" + path)
	return req
}

// Answers that come back in another order than their requests reach the
// request they answer, for many goroutines at once: the handler makes
// early requests wait for later ones.
func TestOutOfOrderAnswersReachTheirRequests(t *testing.T) {
	release := make(chan struct{})
	var arrived sync.WaitGroup
	const goroutines, perGoroutine = 32, 20
	arrived.Add(goroutines)
	l := startLeader(t, func(ctx *fasthttp.RequestCtx) {
		n, _ := strconv.Atoi(string(ctx.QueryArgs().Peek("n")))
		if string(ctx.QueryArgs().Peek("first")) == "1" {
			arrived.Done()
			<-release // held until every goroutine's first request is in
		}
		ctx.Response.Header.Set("X-N", strconv.Itoa(n))
		ctx.SetStatusCode(200 + n%3)
		ctx.SetBodyString("answer " + strconv.Itoa(n))
	})
	c := newClient(t, l.addr)
	waitUp(t, c)
	go func() { arrived.Wait(); close(release) }()
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*perGoroutine)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perGoroutine; i++ {
				n := g*perGoroutine + i
				req := newGet("/x?n=" + strconv.Itoa(n))
				if i == 0 {
					req = newGet("/x?first=1&n=" + strconv.Itoa(n))
				}
				var resp fasthttp.Response
				if err := c.Do(req, &resp, 10*time.Second); err != nil {
					errs <- err
					return
				}
				if resp.StatusCode() != 200+n%3 || string(resp.Header.Peek("X-N")) != strconv.Itoa(n) ||
					string(resp.Body()) != "answer "+strconv.Itoa(n) {
					errs <- errors.New("request " + strconv.Itoa(n) + " got " + resp.String())
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// A link that breaks fails its requests in flight with ErrBroken at once
// (well before their timeout), and the client dials a new link.
func TestBrokenLinkFailsInFlightAndReconnects(t *testing.T) {
	hold := make(chan struct{})
	var once sync.Once
	entered := make(chan struct{}, 1)
	l := startLeader(t, func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/slow" {
			entered <- struct{}{}
			<-hold
		}
		ctx.SetBodyString("ok")
	})
	defer once.Do(func() { close(hold) })
	c := newClient(t, l.addr)
	waitUp(t, c)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- c.Do(newGet("/slow"), &fasthttp.Response{}, 30*time.Second) }()
	<-entered
	l.breakLinks()
	select {
	case err := <-done:
		if err != ErrBroken {
			t.Fatalf("in flight on a broken link: %v, want ErrBroken", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("failed after %v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a request in flight on a broken link got no answer within 10 s")
	}
	once.Do(func() { close(hold) })
	waitUp(t, c)
	var resp fasthttp.Response
	if err := c.Do(newGet("/again"), &resp, 5*time.Second); err != nil || string(resp.Body()) != "ok" {
		t.Fatalf("after reconnecting: %v %q", err, resp.Body())
	}
}

// Beyond InFlightMax requests in flight, Do refuses with ErrFull at once
// and sends nothing.
func TestInFlightLimitRefusesWithErrFull(t *testing.T) {
	hold := make(chan struct{})
	var served sync.WaitGroup
	l := startLeader(t, func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/slow" {
			served.Done()
			<-hold
		}
	})
	c := newClient(t, l.addr)
	waitUp(t, c)
	served.Add(InFlightMax)
	var wg sync.WaitGroup
	for i := 0; i < InFlightMax; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Do(newGet("/slow"), &fasthttp.Response{}, 30*time.Second)
		}()
	}
	served.Wait() // every slot is taken, on the leader too
	if err := c.Do(newGet("/one-more"), &fasthttp.Response{}, 5*time.Second); err != ErrFull {
		t.Fatalf("request %d: %v, want ErrFull", InFlightMax+1, err)
	}
	close(hold)
	wg.Wait()
}

// A frame with a zero or too-large length, or an id never issued, closes
// the connection: on the leader's side (Serve returns) and on the
// follower's (requests in flight fail with ErrBroken).
func TestBadFramesCloseTheConnection(t *testing.T) {
	for _, tc := range []struct {
		name   string
		length uint32
		id     uint64
	}{
		{"zero length", 0, 1},
		{"too long", FrameBytesMax + 1, 1},
		{"zero id", 5, 0},
	} {
		t.Run("leader "+tc.name, func(t *testing.T) {
			a, b := net.Pipe()
			served := make(chan error, 1)
			go func() { served <- Serve(a, func(*fasthttp.RequestCtx) {}) }()
			var h [frameHeaderBytes]byte
			binary.BigEndian.PutUint32(h[0:4], tc.length)
			binary.BigEndian.PutUint64(h[4:12], tc.id)
			go b.Write(append(h[:], "hello"...))
			select {
			case err := <-served:
				if err != errBadFrame {
					t.Fatalf("Serve returned %v, want the bad frame", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Serve kept a connection that sent a bad frame")
			}
			b.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := b.Read(make([]byte, 1)); err != io.EOF && !errors.Is(err, io.ErrClosedPipe) {
				t.Fatalf("read after a bad frame: %v, want the connection closed", err)
			}
		})
	}

	// The follower's side: a fake leader answers an id never issued.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+UpgradeProtocol+"\r\n\r\n")
		var h [frameHeaderBytes]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return
		}
		answer := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
		binary.BigEndian.PutUint32(h[0:4], uint32(len(answer)))
		binary.BigEndian.PutUint64(h[4:12], 999) // never issued
		conn.Write(append(h[:], answer...))
		io.Copy(io.Discard, br)
	}()
	c := newClient(t, ln.Addr().String())
	// The first request that is sent (not ErrDown: the link was up) is
	// the one the fake leader answers under a wrong id.
	deadline := time.Now().Add(5 * time.Second)
	err = ErrDown
	for err == ErrDown && time.Now().Before(deadline) {
		err = c.Do(newGet("/x"), &fasthttp.Response{}, 10*time.Second)
		if err == ErrDown {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err != ErrBroken {
		t.Fatalf("answered with an id never issued: %v, want ErrBroken (link closed)", err)
	}
}

// TestFirstBurstWaitsForTheFirstDial: the requests that arrive together at
// a fresh client, before its link exists, wait for the first dial and go
// over the link, instead of all answering ErrDown (and each opening a
// connection of the caller's other path).
func TestFirstBurstWaitsForTheFirstDial(t *testing.T) {
	l := startLeader(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") })
	c := newClient(t, l.addr)
	const burst = 32
	errs := make(chan error, burst)
	var wg sync.WaitGroup
	for i := 0; i < burst; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var resp fasthttp.Response
			err := c.Do(newGet("/first"), &resp, 5*time.Second)
			if err == nil && string(resp.Body()) != "ok" {
				err = fmt.Errorf("body %q", resp.Body())
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a request of the first burst: %v, want an answer over the link", err)
		}
	}
}

// TestDownAfterTheFirstDialAnswersAtOnce: once the first dial has failed,
// a request to a client without a link is ErrDown without waiting.
func TestDownAfterTheFirstDialAnswersAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every dial is refused
	c := newClient(t, addr)
	if err := c.Do(newGet("/x"), &fasthttp.Response{}, time.Second); err != ErrDown {
		t.Fatalf("first request to a refused address: %v, want ErrDown", err)
	}
	start := time.Now()
	if err := c.Do(newGet("/x"), &fasthttp.Response{}, time.Second); err != ErrDown {
		t.Fatalf("second request: %v, want ErrDown", err)
	}
	if took := time.Since(start); took >= firstDialWait {
		t.Fatalf("second request waited %v for a dial, want ErrDown at once", took)
	}
}
