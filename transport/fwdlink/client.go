package fwdlink

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Client is a follower's link to one leader address. Do is safe for
// concurrent use. The link is dialled on first use and again, with
// backoff, after it breaks.
type Client struct {
	// Addr is the leader's HTTP address, host:port.
	Addr string
	// Header is one header line, "Name: value" without CRLF, sent with the
	// upgrade request so that the leader recognises a peer.
	Header string

	mu        sync.Mutex
	link      *clientLink   // nil: down
	firstDial chan struct{} // closed when the first dial ends; nil before and after
	dialed    bool          // a dial was started
	dialing   bool
	closed    bool
}

type clientLink struct {
	c       *Client
	conn    net.Conn
	q       writeQueue // q.mu also guards pending and next
	pending map[uint64]*call
	next    uint64
}

// call is one request in flight, pooled.
type call struct {
	resp  *fasthttp.Response
	head  bool
	done  chan error
	timer *time.Timer
	frameBuf
}

var calls = sync.Pool{New: func() any {
	cl := &call{done: make(chan error, 1), timer: time.NewTimer(time.Hour)}
	cl.timer.Stop()
	cl.frameBuf.init()
	return cl
}}

// Do sends req over the link and reads the leader's answer into resp.
// It returns ErrDown or ErrFull without sending anything, ErrBroken when
// the link broke with req in flight, ErrTimeout after timeout.
func (c *Client) Do(req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration) error {
	l := c.current()
	if l == nil {
		if l = c.awaitFirstDial(); l == nil {
			return ErrDown
		}
	}
	cl := calls.Get().(*call)
	defer calls.Put(cl)
	cl.resp = resp
	cl.head = req.Header.IsHead()
	req.URI().DisablePathNormalizing = true
	if err := cl.encode(req); err != nil {
		return ErrDown
	}

	l.q.mu.Lock()
	if l.q.broken {
		l.q.mu.Unlock()
		return ErrDown
	}
	if len(l.pending) >= InFlightMax || len(l.q.buf)+len(cl.out.b) > QueuedBytesMax {
		l.q.mu.Unlock()
		return ErrFull
	}
	l.next++
	id := l.next
	l.pending[id] = cl
	l.q.pushLocked(cl.frame(id))
	l.q.mu.Unlock()

	cl.timer.Reset(timeout)
	select {
	case err := <-cl.done:
		cl.timer.Stop()
		return err
	case <-cl.timer.C:
	}
	l.q.mu.Lock()
	if l.pending[id] == cl {
		delete(l.pending, id)
		l.q.mu.Unlock()
		return ErrTimeout
	}
	l.q.mu.Unlock()
	// The reader (or a failing link) took the call and is answering it.
	return <-cl.done
}

// current returns the live link, or nil after starting a dial.
func (c *Client) current() *clientLink {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.link == nil && !c.dialing && !c.closed {
		c.dialing = true
		if !c.dialed {
			c.dialed = true
			c.firstDial = make(chan struct{})
		}
		go c.dialLoop(0)
	}
	return c.link
}

// awaitFirstDial waits, at most firstDialWait, for the client's first dial
// to end, and returns the link it opened, if any. Without it, every request
// of the burst that makes a follower dial a new leader would go the other
// way (one pool connection each); after the first dial, a link that is
// down answers ErrDown at once.
func (c *Client) awaitFirstDial() *clientLink {
	c.mu.Lock()
	done := c.firstDial
	c.mu.Unlock()
	if done == nil {
		return nil
	}
	t := time.NewTimer(firstDialWait)
	select {
	case <-done:
	case <-t.C:
	}
	t.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.link
}

// Close breaks the link and stops dialling.
func (c *Client) Close() {
	c.mu.Lock()
	c.closed = true
	l := c.link
	c.link = nil
	c.mu.Unlock()
	if l != nil {
		l.fail()
	}
}

// dialLoop dials until a link is up, waiting first, then backing off.
func (c *Client) dialLoop(wait time.Duration) {
	for {
		if wait > 0 {
			time.Sleep(wait)
		}
		c.mu.Lock()
		if c.closed {
			c.dialing = false
			c.endFirstDialLocked()
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		l, br, err := c.dial()
		c.mu.Lock()
		if err == nil && !c.closed {
			c.link = l
			c.dialing = false
			c.endFirstDialLocked()
			c.mu.Unlock()
			go l.readLoop(br)
			go func() {
				l.q.run(l.conn)
				l.fail()
			}()
			return
		}
		c.endFirstDialLocked()
		c.mu.Unlock()
		if l != nil {
			l.conn.Close()
		}
		wait = min(max(2*wait, backoffMin), backoffMax)
	}
}

// endFirstDialLocked releases the requests waiting for the first dial.
func (c *Client) endFirstDialLocked() {
	if c.firstDial != nil {
		close(c.firstDial)
		c.firstDial = nil
	}
}

// dial opens a connection and upgrades it to a link.
func (c *Client) dial() (*clientLink, *bufio.Reader, error) {
	conn, err := net.DialTimeout("tcp", c.Addr, dialTimeout)
	if err != nil {
		return nil, nil, err
	}
	conn.SetDeadline(time.Now().Add(dialTimeout))
	upgrade := "GET " + Path + " HTTP/1.1\r\nHost: " + c.Addr + "\r\nConnection: Upgrade\r\nUpgrade: " + UpgradeProtocol + "\r\n"
	if c.Header != "" {
		upgrade += c.Header + "\r\n"
	}
	if _, err := io.WriteString(conn, upgrade+"\r\n"); err != nil {
		conn.Close()
		return nil, nil, err
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return nil, nil, errBadFrame
	}
	conn.SetDeadline(time.Time{})
	l := &clientLink{c: c, conn: conn, pending: map[uint64]*call{}}
	l.q.init()
	return l, br, nil
}

// fail breaks the link once: every request in flight gets ErrBroken and
// the client dials again.
func (l *clientLink) fail() {
	l.q.mu.Lock()
	if l.q.broken {
		l.q.mu.Unlock()
		return
	}
	l.q.breakLocked()
	pending := l.pending
	l.pending = nil
	l.q.mu.Unlock()
	// The client forgets the link before any caller hears ErrBroken, so
	// that a caller who then asks Up or calls Do again sees the link down,
	// never the broken one.
	c := l.c
	c.mu.Lock()
	if c.link == l {
		c.link = nil
		if !c.dialing && !c.closed {
			c.dialing = true
			go c.dialLoop(backoffMin)
		}
	}
	c.mu.Unlock()
	l.conn.Close()
	for _, cl := range pending {
		cl.done <- ErrBroken
	}
}

// readLoop reads answers and hands each to its call until the link breaks.
func (l *clientLink) readLoop(br *bufio.Reader) {
	defer l.fail()
	fr := newFrameReader(br)
	for {
		id, msg, err := fr.next()
		if err != nil {
			return
		}
		l.q.mu.Lock()
		issued := id <= l.next
		cl := l.pending[id]
		delete(l.pending, id)
		l.q.mu.Unlock()
		if !issued {
			return
		}
		if cl == nil {
			continue // its caller timed out
		}
		cl.resp.Reset()
		cl.resp.SkipBody = cl.head
		cl.resp.Header.DisableNormalizing()
		if err := cl.resp.ReadLimitBody(msg, FrameBytesMax); err != nil {
			cl.resp.Reset()
			cl.done <- ErrBroken
			return
		}
		cl.done <- nil
	}
}

// Up reports whether the link is up (tests and metrics).
func (c *Client) Up() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.link != nil
}
