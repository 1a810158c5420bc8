package fwdlink

import (
	"bufio"
	"net"
	"sync"

	"github.com/valyala/fasthttp"
)

// serverCall is one forwarded request on the leader's side, pooled.
type serverCall struct {
	ctx fasthttp.RequestCtx
	id  uint64
	frameBuf
}

var serverCalls = sync.Pool{New: func() any {
	sc := &serverCall{}
	sc.frameBuf.init()
	return sc
}}

type serverLink struct {
	conn    net.Conn
	handler fasthttp.RequestHandler
	q       writeQueue
	slots   chan struct{} // one per request in flight
	wg      sync.WaitGroup
}

// Serve speaks the leader's side of a link on conn (already upgraded)
// until it breaks: every request read runs through handler in its own
// goroutine, at most InFlightMax at once (reading waits beyond), and its
// answer is queued as it comes. A bad frame or request closes conn. Serve
// closes conn and returns once the requests it started have finished.
func Serve(conn net.Conn, handler fasthttp.RequestHandler) error {
	// fasthttp's hijacked connection does not close on Close unless its
	// server keeps hijacked connections; the socket under it does.
	if u, ok := conn.(interface{ UnsafeConn() net.Conn }); ok {
		conn = closeConn{conn, u.UnsafeConn()}
	}
	l := &serverLink{conn: conn, handler: handler, slots: make(chan struct{}, InFlightMax)}
	l.q.init()
	werr := make(chan error, 1)
	go func() {
		err := l.q.run(conn)
		conn.Close() // stops the reader too
		werr <- err
	}()
	err := l.read(bufio.NewReaderSize(conn, 64<<10))
	conn.Close()
	l.q.mu.Lock()
	l.q.breakLocked()
	l.q.mu.Unlock()
	l.wg.Wait()
	<-werr
	return err
}

func (l *serverLink) read(br *bufio.Reader) error {
	fr := newFrameReader(br)
	for {
		id, msg, err := fr.next()
		if err != nil {
			return err
		}
		l.slots <- struct{}{}
		sc := serverCalls.Get().(*serverCall)
		sc.id = id
		sc.ctx.Request.Reset()
		sc.ctx.Response.Reset()
		sc.ctx.ResetUserValues()
		sc.ctx.Init2(l.conn, nil, false)
		sc.ctx.Request.Header.DisableNormalizing()
		if err := sc.ctx.Request.ReadLimitBody(msg, FrameBytesMax); err != nil || fr.unread() > 0 {
			serverCalls.Put(sc)
			<-l.slots
			return errBadFrame
		}
		sc.ctx.Request.URI().DisablePathNormalizing = true
		l.wg.Add(1)
		go l.serve(sc)
	}
}

// serve runs one request and queues its answer.
func (l *serverLink) serve(sc *serverCall) {
	defer l.wg.Done()
	l.handler(&sc.ctx)
	sc.ctx.Response.SkipBody = sc.ctx.IsHead()
	if err := sc.encode(&sc.ctx.Response); err != nil {
		// No answer can be sent: the follower's request would hang until
		// its timeout, so the link closes and fails it at once.
		l.conn.Close()
	} else {
		l.q.mu.Lock()
		if !l.q.broken {
			l.q.pushLocked(sc.frame(sc.id))
		}
		l.q.mu.Unlock()
	}
	serverCalls.Put(sc) // read resets it when it takes it again
	<-l.slots
}

// closeConn reads and writes through Conn and closes raw.
type closeConn struct {
	net.Conn
	raw net.Conn
}

func (c closeConn) Close() error { return c.raw.Close() }
