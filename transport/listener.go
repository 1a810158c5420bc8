package transport

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Connection limits (docs/API.md, "Limits"). A connection above them is
// answered 503 overloaded with Retry-After: 1 in JSON, like any other
// overload, and closed; it never reaches fasthttp, whose own limits would
// answer in plain text.
const (
	// DefaultConnectionsMax bounds the connections open at once: with
	// bodies of at most bodyBytesMax and headers of at most readBufferBytes
	// per connection, it bounds the memory a crowd can make the server use.
	DefaultConnectionsMax = 64 << 10
	// DefaultConnectionsPerIPMax bounds the connections of one client
	// address (an IPv6 /64), so that 16 hosts are needed to fill the
	// server. It is high on purpose: a whole office, campus or mobile
	// carrier can share one address behind NAT (about 680 browsers at 6
	// connections each), and a load tester on one machine opens thousands.
	DefaultConnectionsPerIPMax = 4 << 10

	// lingerTimeout and lingerBytesMax bound how long and how much a
	// connection the server closes is drained first. When a socket is
	// closed with unread bytes, or bytes reach it after the close (the
	// rest of a refused request), the kernel answers with a TCP reset:
	// the client's next write fails, and clients that send the whole
	// request before reading (curl, many libraries) give up without
	// reading the answer; on a lossy network the answer's lost segments
	// are never sent again. So the server shuts its sending side (the
	// client reads the answer, then end of stream), discards what the
	// client still sends, and closes when the client closes or a bound
	// is reached.
	lingerTimeout  = 2 * time.Second
	lingerBytesMax = 256 << 10
	// refusedLingeringMax bounds the refused connections drained at once
	// (each holds a file descriptor and a goroutine for up to
	// lingerTimeout); beyond it a refused connection is closed at once.
	refusedLingeringMax = 1024
	// refuseWriteTimeout bounds the write of a refusal, done on the
	// accepting goroutine; a fresh socket's send buffer always takes it.
	refuseWriteTimeout = 100 * time.Millisecond
	// acceptBackoffMin and acceptBackoffMax bound the wait before accepting
	// again when the process is out of file descriptors: the kernel keeps
	// the waiting connections in the listen backlog meanwhile.
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
	// ipv6PrefixBits is the part of an IPv6 address that names one client:
	// a host is commonly given a whole /64.
	ipv6PrefixBits = 64
)

// ConnLimits bound the connections of a Server (Options.Connections).
// Zero fields take the defaults above.
type ConnLimits struct {
	// Max bounds the connections open at once; refused and draining ones
	// count until their socket is closed.
	Max int
	// PerIPMax bounds the connections of one client address (IPv4 address,
	// IPv6 /64).
	PerIPMax int
	// PerIPExempt are addresses not limited per IP, only in total: in
	// cluster mode the peer nodes, which forward many clients' requests.
	PerIPExempt []netip.Addr
}

// connLimiter counts a server's connections; every listener it wraps
// shares its counts.
type connLimiter struct {
	max, perIPMax int64
	exempt        map[netip.Addr]bool

	open      atomic.Int64
	lingering atomic.Int64 // refused connections being drained

	mu    sync.Mutex
	perIP map[netip.Addr]int64

	refusedTotal, refusedPerIP *metrics.Counter
	acceptFileLimit            *metrics.Counter
}

// Canned refusals, complete HTTP/1.1 answers written straight to the socket.
var (
	refusalTotal = refusal(&apiError{status: 503, code: "overloaded",
		message: "The server has too many connections open; retry after the Retry-After delay."})
	refusalPerIP = refusal(&apiError{status: 503, code: "overloaded",
		message: "Too many connections come from your address; retry after the Retry-After delay."})
)

func refusal(e *apiError) []byte {
	body := appendError(nil, e)
	out := []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: ")
	out = append(out, retryAfterSeconds...)
	out = append(out, "\r\nConnection: close\r\nContent-Length: "...)
	out = strconv.AppendInt(out, int64(len(body)), 10)
	out = append(out, "\r\n\r\n"...)
	return append(out, body...)
}

func newConnLimiter(set *metrics.Set, lim ConnLimits) *connLimiter {
	l := &connLimiter{
		max:             int64(lim.Max),
		perIPMax:        int64(lim.PerIPMax),
		exempt:          map[netip.Addr]bool{},
		perIP:           map[netip.Addr]int64{},
		refusedTotal:    set.NewCounter(`flashsale_http_connections_refused_total{reason="total"}`),
		refusedPerIP:    set.NewCounter(`flashsale_http_connections_refused_total{reason="per_ip"}`),
		acceptFileLimit: set.NewCounter(`flashsale_http_accept_file_limit_total`),
	}
	if l.max <= 0 {
		l.max = DefaultConnectionsMax
	}
	if l.perIPMax <= 0 {
		l.perIPMax = DefaultConnectionsPerIPMax
	}
	for _, a := range lim.PerIPExempt {
		l.exempt[clientKey(a)] = true
	}
	set.NewGauge(`flashsale_http_connections_open`, func() float64 { return float64(l.open.Load()) })
	return l
}

// clientKey is the address that names a client: IPv4 whole, IPv6 by /64.
func clientKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(ipv6PrefixBits); err == nil {
			return p.Addr()
		}
	}
	return a
}

// Listener wraps ln with the server's connection limits and the drain
// before close; serve the HTTP server on what it returns.
func (s *Server) Listener(ln net.Listener) net.Listener {
	return &limitListener{Listener: ln, l: s.conns}
}

type limitListener struct {
	net.Listener
	l *connLimiter
}

// Accept returns the next connection within the limits, answering and
// closing those above them. When the process is out of file descriptors
// it waits and tries again rather than fail: fasthttp stops serving on an
// accept error.
func (ln *limitListener) Accept() (net.Conn, error) {
	l := ln.l
	backoff := acceptBackoffMin
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) && !errors.Is(err, syscall.ENFILE) {
				return nil, err
			}
			l.acceptFileLimit.Inc()
			time.Sleep(backoff)
			backoff = min(2*backoff, acceptBackoffMax)
			continue
		}
		backoff = acceptBackoffMin
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			l.refuse(c, refusalTotal, l.refusedTotal)
			continue
		}
		lc := &limitedConn{Conn: c, l: l}
		if tcp, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			if key := clientKey(tcp.AddrPort().Addr()); !l.exempt[key] {
				if !l.acquireIP(key) {
					l.open.Add(-1)
					l.refuse(c, refusalPerIP, l.refusedPerIP)
					continue
				}
				lc.key, lc.keyed = key, true
			}
		}
		return lc, nil
	}
}

func (l *connLimiter) acquireIP(key netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.perIP[key]
	if n >= l.perIPMax {
		return false
	}
	l.perIP[key] = n + 1
	return true
}

func (l *connLimiter) release(c *limitedConn) {
	if c.keyed {
		l.mu.Lock()
		if n := l.perIP[c.key] - 1; n > 0 {
			l.perIP[c.key] = n
		} else {
			delete(l.perIP, c.key)
		}
		l.mu.Unlock()
	}
	l.open.Add(-1)
}

// refuse writes answer on c and closes it, draining it first unless
// refusedLingeringMax refused connections are already being drained.
func (l *connLimiter) refuse(c net.Conn, answer []byte, refused *metrics.Counter) {
	refused.Inc()
	_ = c.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
	if _, err := c.Write(answer); err != nil || l.lingering.Add(1) > refusedLingeringMax {
		if err == nil {
			l.lingering.Add(-1)
		}
		_ = c.Close()
		return
	}
	go func() {
		_ = lingerClose(c)
		l.lingering.Add(-1)
	}()
}

// discardBuffers hold what lingerClose throws away.
var discardBuffers = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// lingerClose shuts c's sending side, so that the client reads everything
// written so far and then end of stream, discards what the client still
// sends (at most lingerBytesMax, for at most lingerTimeout), then closes.
func lingerClose(c net.Conn) error {
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return c.Close()
	}
	if c.SetReadDeadline(time.Now().Add(lingerTimeout)) == nil {
		buf := discardBuffers.Get().(*[]byte)
		for n := 0; n < lingerBytesMax; {
			k, err := c.Read(*buf)
			n += k
			if err != nil {
				break
			}
		}
		discardBuffers.Put(buf)
	}
	return c.Close()
}

// limitedConn is one accepted connection: it gives its place back when
// closed, and drains before closing when the server closes it first.
type limitedConn struct {
	net.Conn
	l     *connLimiter
	key   netip.Addr // the client address counted, if keyed
	keyed bool

	reading    atomic.Bool // a Read is in progress
	peerClosed atomic.Bool // a Read returned end of stream
	closed     atomic.Bool
}

func (c *limitedConn) Read(p []byte) (int, error) {
	c.reading.Store(true)
	n, err := c.Conn.Read(p)
	c.reading.Store(false)
	if err == io.EOF {
		c.peerClosed.Store(true)
	}
	return n, err
}

// Close closes the connection once. When the client closed first there is
// nothing to drain; when another goroutine is blocked reading (fasthttp's
// Shutdown closing an idle keep-alive connection) the connection is idle
// and must be closed at once to wake it. Otherwise the server is closing a
// connection it answered (an error such as 431 or 413, Connection: close,
// an idle timeout): lingerClose keeps the answer from being lost.
func (c *limitedConn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	var err error
	if c.reading.Load() || c.peerClosed.Load() {
		err = c.Conn.Close()
	} else {
		err = lingerClose(c.Conn)
	}
	c.l.release(c)
	return err
}

// SetKeepAlive and SetKeepAlivePeriod pass fasthttp's TCP keep-alive
// settings through to the socket.
func (c *limitedConn) SetKeepAlive(on bool) error {
	if k, ok := c.Conn.(interface{ SetKeepAlive(bool) error }); ok {
		return k.SetKeepAlive(on)
	}
	return nil
}

func (c *limitedConn) SetKeepAlivePeriod(d time.Duration) error {
	if k, ok := c.Conn.(interface{ SetKeepAlivePeriod(time.Duration) error }); ok {
		return k.SetKeepAlivePeriod(d)
	}
	return nil
}
