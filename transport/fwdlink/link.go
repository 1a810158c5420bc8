// Package fwdlink is the forwarding link between cluster nodes: one
// long-lived connection from a follower to a leader over which many
// forwarded HTTP requests travel at once.
//
// What it promises:
//   - Each request and its answer travel as a frame: a 4-byte big-endian
//     payload length, an 8-byte big-endian request id, and the request or
//     response in HTTP/1.1 wire form (fasthttp's own serialisation), so
//     that status, headers and body arrive unchanged.
//   - Answers come back in any order and are matched to their request by
//     id; no request waits behind another one on the link.
//   - A side writes everything queued with one write call and only waits
//     when its queue is empty, so that many requests share a syscall.
//   - A Client refuses at once (ErrFull) beyond InFlightMax requests in
//     flight or QueuedBytesMax bytes queued; answers ErrDown, without
//     sending anything, while it has no link (the caller may use another
//     path); fails every request in flight with ErrBroken when its link
//     breaks, and dials again with backoff.
//   - A frame with a length of 0 or above FrameBytesMax, or an id never
//     issued, closes the connection.
package fwdlink

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"time"
)

// Path and UpgradeProtocol name the HTTP upgrade that opens a link: the
// follower sends GET Path with "Upgrade: UpgradeProtocol" to the leader's
// HTTP address, which answers 101 and speaks frames from then on.
const (
	Path            = "/cluster/forward-link"
	UpgradeProtocol = "flashsale-forward/1"
)

// Limits of one link.
const (
	// FrameBytesMax bounds one frame's payload: a request (at most 20 KiB
	// of request line and headers and 64 KiB of body) or an answer.
	FrameBytesMax = 256 << 10
	// InFlightMax bounds the requests sent on one link and not yet
	// answered.
	InFlightMax = 4096
	// QueuedBytesMax bounds the bytes queued on one side of a link and not
	// yet written to the socket.
	QueuedBytesMax = 8 << 20

	frameHeaderBytes = 12
	writeTimeout     = 5 * time.Second
	dialTimeout      = time.Second
	// firstDialWait bounds how long requests wait for a client's first
	// dial before they are ErrDown: a dial on a LAN takes milliseconds, and
	// the caller's forwarding timeout (1.5 s) must still leave time for the
	// exchange itself.
	firstDialWait = 200 * time.Millisecond
	backoffMin    = 50 * time.Millisecond
	backoffMax    = 2 * time.Second
)

// Errors of Client.Do.
var (
	// ErrDown: no link is up; nothing was sent.
	ErrDown = errors.New("fwdlink: no link to the leader")
	// ErrFull: the link's in-flight or queued-bytes limit is reached;
	// nothing was sent.
	ErrFull = errors.New("fwdlink: the link is full")
	// ErrBroken: the link broke while the request was in flight; the
	// leader may or may not have applied it.
	ErrBroken = errors.New("fwdlink: the link broke with the request in flight")
	// ErrTimeout: no answer within the caller's timeout.
	ErrTimeout = errors.New("fwdlink: no answer in time")
)

var errBadFrame = errors.New("fwdlink: bad frame")

// putFrameHeader fills the first frameHeaderBytes of frame.
func putFrameHeader(frame []byte, id uint64) {
	binary.BigEndian.PutUint32(frame[0:4], uint32(len(frame)-frameHeaderBytes))
	binary.BigEndian.PutUint64(frame[4:12], id)
}

// parseFrameHeader checks a frame header's length; the caller checks the id.
func parseFrameHeader(h []byte) (n int, id uint64, err error) {
	n = int(binary.BigEndian.Uint32(h[0:4]))
	id = binary.BigEndian.Uint64(h[4:12])
	if n == 0 || n > FrameBytesMax || id == 0 {
		return 0, 0, errBadFrame
	}
	return n, id, nil
}

// frameReader reads a link's frames from br into one reused buffer.
type frameReader struct {
	br      *bufio.Reader
	hdr     [frameHeaderBytes]byte
	payload []byte
	rd      bytes.Reader
	msg     *bufio.Reader // reads the last frame's message
}

func newFrameReader(br *bufio.Reader) *frameReader {
	f := &frameReader{br: br}
	f.msg = bufio.NewReaderSize(&f.rd, 4<<10)
	return f
}

// next reads one frame and returns its id and a reader of its message,
// valid until the next call. A bad header is errBadFrame.
func (f *frameReader) next() (uint64, *bufio.Reader, error) {
	if _, err := io.ReadFull(f.br, f.hdr[:]); err != nil {
		return 0, nil, err
	}
	n, id, err := parseFrameHeader(f.hdr[:])
	if err != nil {
		return 0, nil, err
	}
	if cap(f.payload) < n {
		f.payload = make([]byte, n)
	}
	f.payload = f.payload[:n]
	if _, err := io.ReadFull(f.br, f.payload); err != nil {
		return 0, nil, err
	}
	f.rd.Reset(f.payload)
	f.msg.Reset(&f.rd)
	return id, f.msg, nil
}

// unread is how many bytes of the last frame's message were not read.
func (f *frameReader) unread() int { return f.msg.Buffered() + f.rd.Len() }

// bufWriter appends what is written to b.
type bufWriter struct{ b []byte }

func (w *bufWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// frameBuf builds one outgoing frame, reused: a request on the follower's
// side, an answer on the leader's.
type frameBuf struct {
	out bufWriter
	bw  *bufio.Writer
}

func (f *frameBuf) init() { f.bw = bufio.NewWriterSize(&f.out, 4<<10) }

// encode writes m (a *fasthttp.Request or *fasthttp.Response) as the
// frame's message, after room for the header; errBadFrame beyond
// FrameBytesMax.
func (f *frameBuf) encode(m interface{ Write(*bufio.Writer) error }) error {
	f.out.b = append(f.out.b[:0], make([]byte, frameHeaderBytes)...)
	f.bw.Reset(&f.out)
	if err := m.Write(f.bw); err != nil {
		return err
	}
	if err := f.bw.Flush(); err != nil {
		return err
	}
	if len(f.out.b)-frameHeaderBytes > FrameBytesMax {
		return errBadFrame
	}
	return nil
}

// frame is the encoded frame under id.
func (f *frameBuf) frame(id uint64) []byte {
	putFrameHeader(f.out.b, id)
	return f.out.b
}

// writeQueue is one side's outgoing frames. push appends under the lock;
// run writes all that is queued with one Write and waits only when the
// queue is empty.
type writeQueue struct {
	mu     sync.Mutex
	cond   sync.Cond
	buf    []byte
	broken bool
}

func (q *writeQueue) init() { q.cond.L = &q.mu }

// breakLocked marks the queue broken and wakes its writer, which returns;
// the caller holds q.mu.
func (q *writeQueue) breakLocked() {
	q.broken = true
	q.cond.Broadcast()
}

// pushLocked queues frame; the caller holds q.mu and checked q.broken.
func (q *writeQueue) pushLocked(frame []byte) {
	if len(q.buf) == 0 {
		q.cond.Signal()
	}
	q.buf = append(q.buf, frame...)
}

// writeYieldsMax is the most times a writer yields the processor before
// one write, so that goroutines busy with other work cannot hold a frame
// back for long.
const writeYieldsMax = 4

// run writes queued frames to conn until the queue breaks or a write fails.
func (q *writeQueue) run(conn net.Conn) error {
	var spare []byte
	for {
		q.mu.Lock()
		for len(q.buf) == 0 && !q.broken {
			q.cond.Wait()
		}
		// Frames come in bursts (a commit answers several holds at once,
		// and their clients send their next requests together): let the
		// goroutines about to queue run first, for as long as the last
		// look found more, so that one write carries the burst. With
		// nobody else runnable the yield returns at once.
		for yields := 0; yields < writeYieldsMax && !q.broken; yields++ {
			queued := len(q.buf)
			q.mu.Unlock()
			runtime.Gosched()
			q.mu.Lock()
			if len(q.buf) == queued {
				break
			}
		}
		if q.broken {
			q.mu.Unlock()
			return net.ErrClosed
		}
		out := q.buf
		q.buf = spare[:0]
		q.mu.Unlock()
		conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := conn.Write(out); err != nil {
			return err
		}
		spare = out
	}
}
