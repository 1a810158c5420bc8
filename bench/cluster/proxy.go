package cluster

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Direction is one way of a proxied connection.
type Direction int

const (
	// DialerToTarget is the bytes the side that connected to the proxy
	// sends towards the target.
	DialerToTarget Direction = iota
	// TargetToDialer is the bytes the target sends back.
	TargetToDialer
)

func (d Direction) String() string {
	if d == DialerToTarget {
		return "dialer→target"
	}
	return "target→dialer"
}

// Proxy buffer bounds: each direction of each connection holds at most
// chunksQueuedMax chunks of at most chunkBytesMax bytes in flight inside the
// proxy (read, not yet written), so a delayed or stalled link pushes back on
// its sender through TCP instead of growing memory.
const (
	chunkBytesMax   = 32 << 10
	chunksQueuedMax = 64
)

// proxyDialTimeout bounds the proxy's dial of its target for a new connection.
const proxyDialTimeout = 2 * time.Second

// faults is a Proxy's current mode. A new value replaces the old one whole;
// changed is closed when that happens, so a chunk waiting out a delay
// re-reads the mode at once.
type faults struct {
	name    string
	drop    [2]bool // by Direction: bytes read are discarded
	delay   time.Duration
	changed chan struct{}
}

// Proxy is a fault-injecting TCP proxy for one link: it listens on
// 127.0.0.1:<free port>, forwards every connection to its target, and can
// drop, delay or cut one way the bytes of every connection, the live ones
// included, at any moment. It is safe for concurrent use. Its goroutines end
// when Close is called, which happens at the latest when the test ends.
type Proxy struct {
	t      testing.TB
	target string
	ln     net.Listener

	mode atomic.Pointer[faults]

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // both ends of every live connection
	closed bool
	done   chan struct{} // closed by Close
	wg     sync.WaitGroup

	forwarded [2]atomic.Int64 // bytes written on, by Direction
	dropped   [2]atomic.Int64 // bytes discarded, by Direction
}

// NewProxy starts a proxy to target (host:port) in Pass mode. It fails the
// test if it cannot listen. The target need not be up yet: each connection
// dials it when it arrives, and is closed if that dial fails.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("cluster: proxy to %s: listen: %v", target, err)
	}
	p := &Proxy{t: t, target: target, ln: ln, conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
	p.mode.Store(&faults{name: "pass", changed: make(chan struct{})})
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's listen address, 127.0.0.1:<port>.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Mode names the current mode, e.g. "pass", "drop", "delay 50ms",
// "cut dialer→target".
func (p *Proxy) Mode() string { return p.mode.Load().name }

// Pass forwards every byte at once, both ways.
func (p *Proxy) Pass() { p.set(faults{name: "pass"}) }

// Heal is Pass: the link is back to normal. Bytes discarded meanwhile stay
// lost; bytes waiting out a delay are forwarded at once.
func (p *Proxy) Heal() { p.set(faults{name: "pass"}) }

// Drop reads and discards every byte in both directions. Connections stay
// open, as on a link that silently loses everything; new connections are
// still accepted and dialled.
func (p *Proxy) Drop() { p.set(faults{name: "drop", drop: [2]bool{true, true}}) }

// Delay forwards each chunk d after the proxy read it, both ways, keeping
// the order of the bytes.
func (p *Proxy) Delay(d time.Duration) { p.set(faults{name: "delay " + d.String(), delay: d}) }

// CutOneWay discards the bytes going in direction dir and forwards the
// other direction at once: an asymmetric partition.
func (p *Proxy) CutOneWay(dir Direction) {
	f := faults{name: "cut " + dir.String()}
	f.drop[dir] = true
	p.set(f)
}

// Forwarded is the number of bytes the proxy wrote on in direction dir
// since it started.
func (p *Proxy) Forwarded(dir Direction) int64 { return p.forwarded[dir].Load() }

// Dropped is the number of bytes the proxy discarded in direction dir
// since it started.
func (p *Proxy) Dropped(dir Direction) int64 { return p.dropped[dir].Load() }

func (p *Proxy) set(f faults) {
	f.changed = make(chan struct{})
	old := p.mode.Swap(&f)
	close(old.changed)
}

// Close stops listening, closes every connection and waits for the proxy's
// goroutines to end. Calling it again does nothing.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.done)
	_ = p.ln.Close()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// track registers a live connection; it returns false (and closes c) once
// the proxy is closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	_ = c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.t.Logf("cluster: proxy %s → %s: accept: %v", p.Addr(), p.target, err)
			}
			return
		}
		if !p.track(c) {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve dials the target for the accepted connection and pumps both ways
// until both directions ended; then both connections are closed.
func (p *Proxy) serve(dialer net.Conn) {
	defer p.wg.Done()
	defer p.untrack(dialer)
	target, err := net.DialTimeout("tcp", p.target, proxyDialTimeout)
	if err != nil {
		return // the dialer sees its connection closed, as if the target refused
	}
	if !p.track(target) {
		return
	}
	defer p.untrack(target)
	var pumps sync.WaitGroup
	pumps.Go(func() { p.pump(dialer, target, DialerToTarget) })
	pumps.Go(func() { p.pump(target, dialer, TargetToDialer) })
	pumps.Wait()
}

// chunk is bytes read from one side, with the time they were read.
type chunk struct {
	data   []byte
	readAt time.Time
}

// pump forwards src to dst in direction dir through a bounded queue: a
// reader that stamps and queues chunks (discarding them if the mode drops
// this direction) and a writer that forwards each chunk once its delay has
// passed (discarding it if the mode drops this direction by then). When src
// ends, dst's write side is shut; when either side fails, both are closed.
func (p *Proxy) pump(src, dst net.Conn, dir Direction) {
	queue := make(chan chunk, chunksQueuedMax)
	var writer sync.WaitGroup
	writer.Go(func() {
		defer func() {
			// Drain what the reader still queues so it never blocks on us.
			for range queue {
			}
		}()
		for c := range queue {
			if !p.waitDue(c.readAt) {
				_ = src.Close()
				_ = dst.Close()
				return
			}
			if p.mode.Load().drop[dir] {
				p.dropped[dir].Add(int64(len(c.data)))
				continue
			}
			if _, err := dst.Write(c.data); err != nil {
				_ = src.Close()
				_ = dst.Close()
				return
			}
			p.forwarded[dir].Add(int64(len(c.data)))
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	})
	buf := make([]byte, chunkBytesMax)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if p.mode.Load().drop[dir] {
				p.dropped[dir].Add(int64(n))
			} else {
				select {
				case queue <- chunk{data: append([]byte(nil), buf[:n]...), readAt: time.Now()}:
				case <-p.done:
				}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				_ = dst.Close()
			}
			break
		}
	}
	close(queue)
	writer.Wait()
}

// waitDue waits until the current mode's delay has passed since readAt,
// re-reading the mode whenever it changes. It returns false if the proxy
// was closed meanwhile.
func (p *Proxy) waitDue(readAt time.Time) bool {
	for {
		f := p.mode.Load()
		wait := time.Until(readAt.Add(f.delay))
		if wait <= 0 {
			return true
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
			return true
		case <-f.changed:
			timer.Stop()
		case <-p.done:
			timer.Stop()
			return false
		}
	}
}

// String describes the proxy for logs.
func (p *Proxy) String() string {
	return fmt.Sprintf("proxy %s → %s (%s)", p.Addr(), p.target, p.Mode())
}
