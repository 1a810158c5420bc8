package cluster

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Time bounds of the proxy tests: how long a byte that must arrive may take
// on loopback, and how long a byte that must not arrive is waited for.
const (
	arriveWithin = 2 * time.Second
	silenceFor   = 300 * time.Millisecond
)

// link is one connection through a proxy: dialer is the end that dialled
// the proxy, target the end the target listener accepted.
type link struct {
	dialer, target net.Conn
}

// targetListener is the far end of the proxy in these tests: a loopback
// listener whose connections the test handles itself.
func targetListener(t *testing.T) *net.TCPListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// connect dials p and accepts the proxy's connection on ln.
func connect(t *testing.T, p *Proxy, ln *net.TCPListener) link {
	t.Helper()
	d, err := net.DialTimeout("tcp", p.Addr(), arriveWithin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	_ = ln.SetDeadline(time.Now().Add(arriveWithin))
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("the proxy did not connect to its target: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return link{dialer: d, target: c}
}

func send(t *testing.T, c net.Conn, data []byte) {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(arriveWithin))
	if _, err := c.Write(data); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// expectBytes reads exactly want from c within arriveWithin.
func expectBytes(t *testing.T, c net.Conn, want []byte, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(arriveWithin))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("%s: reading %d bytes: %v", what, len(want), err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %q, want %q", what, trimmed(got), trimmed(want))
	}
}

// expectSilence asserts that nothing arrives on c for silenceFor and that
// the connection is still open (a read times out rather than ending).
func expectSilence(t *testing.T, c net.Conn, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(silenceFor))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	var ne net.Error
	switch {
	case n > 0:
		t.Fatalf("%s: %q arrived, want nothing", what, buf[:n])
	case errors.As(err, &ne) && ne.Timeout():
	default:
		t.Fatalf("%s: connection ended (%v), want it open and silent", what, err)
	}
}

func trimmed(b []byte) []byte {
	if len(b) > 40 {
		return append(b[:40:40], "…"...)
	}
	return b
}

// TestProxyPass: in Pass mode bytes flow both ways unchanged, also a
// transfer far larger than the proxy's queue in both directions at once.
func TestProxyPass(t *testing.T) {
	ln := targetListener(t)
	p := NewProxy(t, ln.Addr().String())
	l := connect(t, p, ln)
	send(t, l.dialer, []byte("ping"))
	expectBytes(t, l.target, []byte("ping"), "dialer→target")
	send(t, l.target, []byte("pong"))
	expectBytes(t, l.dialer, []byte("pong"), "target→dialer")

	big := bytes.Repeat([]byte("0123456789abcdef"), (8<<20)/16) // 8 MiB, > chunksQueuedMax*chunkBytesMax
	errs := make(chan error, 2)
	for _, c := range []net.Conn{l.dialer, l.target} {
		go func() {
			_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			_, err := c.Write(big)
			errs <- err
		}()
	}
	for _, c := range []net.Conn{l.target, l.dialer} {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got := make([]byte, len(big))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, big) {
			t.Fatalf("8 MiB transfer: %v (equal %v)", err, bytes.Equal(got, big))
		}
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got, want := p.Forwarded(DialerToTarget), int64(len(big)+4); got != want {
		t.Errorf("Forwarded(dialer→target) = %d, want %d", got, want)
	}
}

// TestProxyDrop: Drop discards bytes both ways on a connection opened
// before it, keeping the connection open; after Heal new bytes flow again
// and the dropped ones never arrive.
func TestProxyDrop(t *testing.T) {
	ln := targetListener(t)
	p := NewProxy(t, ln.Addr().String())
	l := connect(t, p, ln)
	send(t, l.dialer, []byte("before"))
	expectBytes(t, l.target, []byte("before"), "before Drop")

	p.Drop()
	send(t, l.dialer, []byte("lost-1"))
	send(t, l.target, []byte("lost-2"))
	expectSilence(t, l.target, "dialer→target while dropped")
	expectSilence(t, l.dialer, "target→dialer while dropped")
	if p.Dropped(DialerToTarget) != 6 || p.Dropped(TargetToDialer) != 6 {
		t.Errorf("Dropped = %d, %d; want 6, 6", p.Dropped(DialerToTarget), p.Dropped(TargetToDialer))
	}
	// A connection made while dropping is accepted and silent too.
	l2 := connect(t, p, ln)
	send(t, l2.dialer, []byte("x"))
	expectSilence(t, l2.target, "new connection while dropped")

	p.Heal()
	send(t, l.dialer, []byte("after"))
	expectBytes(t, l.target, []byte("after"), "dialer→target after Heal")
	send(t, l.target, []byte("back"))
	expectBytes(t, l.dialer, []byte("back"), "target→dialer after Heal")
	expectSilence(t, l.target, "after Heal, nothing more (the dropped bytes are gone)")
}

// TestProxyDelay: Delay(d) holds every chunk back by d in both directions,
// live connections included; Heal forwards a waiting chunk at once.
func TestProxyDelay(t *testing.T) {
	const delay = 200 * time.Millisecond
	ln := targetListener(t)
	p := NewProxy(t, ln.Addr().String())
	l := connect(t, p, ln)
	p.Delay(delay)
	for _, dir := range []struct {
		from, to net.Conn
		name     string
	}{{l.dialer, l.target, "dialer→target"}, {l.target, l.dialer, "target→dialer"}} {
		start := time.Now()
		send(t, dir.from, []byte("slow"))
		expectBytes(t, dir.to, []byte("slow"), dir.name)
		if took := time.Since(start); took < delay {
			t.Errorf("%s: arrived after %v with Delay(%v)", dir.name, took, delay)
		}
	}
	// Order is kept across chunks written apart.
	send(t, l.dialer, []byte("a"))
	time.Sleep(20 * time.Millisecond)
	send(t, l.dialer, []byte("b"))
	expectBytes(t, l.target, []byte("ab"), "two chunks, in order")

	p.Delay(time.Hour)
	start := time.Now()
	send(t, l.dialer, []byte("waiting"))
	time.Sleep(50 * time.Millisecond)
	p.Heal()
	expectBytes(t, l.target, []byte("waiting"), "a delayed chunk after Heal")
	if took := time.Since(start); took > time.Second {
		t.Errorf("a chunk delayed by an hour arrived %v after Heal, want at once", took)
	}
}

// TestProxyCutOneWay: a cut direction discards, the other flows at once,
// for each direction.
func TestProxyCutOneWay(t *testing.T) {
	ln := targetListener(t)
	p := NewProxy(t, ln.Addr().String())
	l := connect(t, p, ln)

	p.CutOneWay(DialerToTarget)
	send(t, l.dialer, []byte("cut"))
	send(t, l.target, []byte("flows"))
	expectBytes(t, l.dialer, []byte("flows"), "target→dialer with dialer→target cut")
	expectSilence(t, l.target, "dialer→target cut")

	p.CutOneWay(TargetToDialer)
	send(t, l.dialer, []byte("flows"))
	send(t, l.target, []byte("cut"))
	expectBytes(t, l.target, []byte("flows"), "dialer→target with target→dialer cut")
	expectSilence(t, l.dialer, "target→dialer cut")

	p.Heal()
	send(t, l.target, []byte("ok"))
	expectBytes(t, l.dialer, []byte("ok"), "after Heal")
	if p.Dropped(DialerToTarget) != 3 || p.Dropped(TargetToDialer) != 3 {
		t.Errorf("Dropped = %d, %d; want 3, 3", p.Dropped(DialerToTarget), p.Dropped(TargetToDialer))
	}
}

// TestProxyEndOfStream: a side that closes its write half is seen as
// ended by the other side, and a target that is down closes the dialer's
// connection.
func TestProxyEndOfStream(t *testing.T) {
	ln := targetListener(t)
	p := NewProxy(t, ln.Addr().String())
	l := connect(t, p, ln)
	send(t, l.dialer, []byte("last"))
	if err := l.dialer.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = l.target.SetReadDeadline(time.Now().Add(arriveWithin))
	if got, err := io.ReadAll(l.target); err != nil || string(got) != "last" {
		t.Fatalf("after CloseWrite: read %q, %v; want \"last\" then EOF", got, err)
	}
	send(t, l.target, []byte("reply")) // the other half still works
	expectBytes(t, l.dialer, []byte("reply"), "target→dialer after the dialer's CloseWrite")

	down := targetListener(t)
	addr := down.Addr().String()
	down.Close()
	pd := NewProxy(t, addr)
	c, err := net.Dial("tcp", pd.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(arriveWithin))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || os.IsTimeout(err) {
		t.Fatalf("proxy to a closed port: read %d, %v; want the connection closed", n, err)
	}
}

// TestProxyCloseEndsEverything: Close ends live connections (the dialer
// sees its connection end) and every goroutine of the proxy, also with
// chunks waiting out a delay.
func TestProxyCloseEndsEverything(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	ln := targetListener(t)
	p := NewProxy(t, ln.Addr().String())
	l := connect(t, p, ln)
	p.Delay(time.Hour)
	send(t, l.dialer, []byte("never"))
	send(t, l.target, []byte("never"))
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	p.Close()
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v", took)
	}
	_ = l.dialer.SetReadDeadline(time.Now().Add(arriveWithin))
	if n, err := l.dialer.Read(make([]byte, 8)); n != 0 || err == nil || os.IsTimeout(err) {
		t.Errorf("after Close: read %d, %v; want the connection ended", n, err)
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Error("the proxy still accepts connections after Close")
	}
	p.Close() // a second Close does nothing
	l.dialer.Close()
	l.target.Close()
	ln.Close()
	goleak.VerifyNone(t, ignore)
}
