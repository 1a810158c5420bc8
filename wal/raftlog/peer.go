package raftlog

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The peer transport carries the Raft messages of every partition between
// the nodes of a cluster over exactly one long-lived TCP connection per pair
// of nodes, used in both directions: the node with the lower id dials, the
// other accepts. A newer accepted connection from a peer replaces an older
// one (the dialer restarted, or saw its old connection die first).
//
// Handshake. Each side sends a hello of peerHelloBytes bytes:
//
//	magic     4 bytes "FSR1"
//	cluster   8 bytes big-endian: the hash of the cluster file
//	sender    8 bytes big-endian: the sending node's id
//	receiver  8 bytes big-endian: the id the sender expects at the other end
//
// The acceptor checks the dialer's hello (same cluster, receiver is itself,
// sender is a known peer with a lower id) and only then answers with its
// own; the dialer checks that answer. A mismatch closes the connection and
// logs a warning (at most one per peerWarnInterval and kind of mismatch).
//
// Frames, after the hellos, in both directions:
//
//	length    uint32 big-endian: payload bytes, at most peerFrameBytesMax
//	crc       uint32 big-endian: CRC-32C (Castagnoli) of the payload
//	payload   uvarint message count, then per message
//	          uvarint partition + uvarint length + proto bytes of a raftpb.Message
//
// A bad CRC or a malformed payload closes the connection; the dialer
// reconnects. Every frame received is handed to Deliver as one batch. A
// frame of no message is a keepalive: a writer with nothing to send for
// peerKeepaliveInterval sends one, so that a connection between two
// followers (which exchange no Raft message) stays up, and a dead one is
// seen within peerReadTimeout.
const (
	peerHelloBytes = 28
	peerMagic      = "FSR1"

	// peerFrameBytesMax bounds a frame's payload. Snapshots travel whole in
	// one MsgSnap, so it is large; a single message beyond it is dropped.
	peerFrameBytesMax = 64 << 20
	// A writer puts everything queued for its peer into one frame, up to
	// these bounds (the message that crosses peerBatchBytesMax still goes
	// in, as long as the frame stays under peerFrameBytesMax).
	peerBatchBytesMax    = 4 << 20
	peerBatchMessagesMax = 4096
	// peerQueueLen bounds the envelopes waiting for one peer's writer;
	// beyond it Send drops (and reports) the new message.
	peerQueueLen = 4096
	// peerWriteTimeout bounds one frame's write and flush, so that a peer
	// that stopped reading does not wedge its writer: the connection is
	// closed and the frame reported dropped.
	peerWriteTimeout = 5 * time.Second
	// A big frame (a snapshot) gets one more second per
	// peerWriteBytesPerSecondMin bytes.
	peerWriteBytesPerSecondMin = 4 << 20
	// peerReadTimeout bounds the wait for the next frame, and for each
	// peerReadChunkBytes of a frame. With keepalives every
	// peerKeepaliveInterval, a connection silent that long is dead.
	peerReadTimeout       = 10 * time.Second
	peerKeepaliveInterval = 1 * time.Second
	// peerHelloTimeout bounds the handshake of a new connection.
	peerHelloTimeout = 3 * time.Second
	peerDialTimeout  = 1 * time.Second
	// Reconnection waits, doubling from peerBackoffMin to peerBackoffMax,
	// each jittered to between half and all of its value.
	peerBackoffMin = 50 * time.Millisecond
	peerBackoffMax = 1 * time.Second
	// peerStopTimeout bounds Stop's wait for the transport's goroutines.
	peerStopTimeout = 5 * time.Second
	// peerWarnInterval rate-limits the warnings of a failing handshake or
	// an unreachable peer, which would otherwise repeat at every retry.
	peerWarnInterval = 10 * time.Second
	// peerReadBufferBytesKeep is the largest receive buffer a connection
	// keeps between frames; a bigger one (a snapshot) is released.
	peerReadBufferBytesKeep = 8 << 20
	// peerReadChunkBytes is how much of a frame is allocated ahead of the
	// bytes actually received, so a corrupt length costs no more.
	peerReadChunkBytes = 1 << 20
)

var peerCastagnoli = crc32.MakeTable(crc32.Castagnoli)

// PeersConfig configures a Peers.
type PeersConfig struct {
	NodeID uint64
	// Addrs is every peer's dial address, this node's excluded. The
	// address of a peer with a lower id is not used: that peer dials.
	Addrs map[uint64]string
	// Listen is this node's listen address (e.g. 127.0.0.1:9081).
	Listen string
	// ClusterID identifies the cluster (a hash of the cluster file); a
	// peer with another one is refused.
	ClusterID uint64
	// Deliver receives every frame's messages from peer from, one call per
	// frame. It is called from one goroutine per connection, concurrently,
	// and must not block (Node.Deliver).
	Deliver func(from uint64, envs []Envelope)
	// Dropped is told of every message the transport could not send to
	// peer to (Node.Dropped). It must not block and may be called from
	// Send itself.
	Dropped func(to uint64, e Envelope)
	Logger  zerolog.Logger
}

// PeerStats counts what the transport did; read with atomic loads.
type PeerStats struct {
	// Frames carrying messages (keepalives count only in the bytes).
	FramesSent, FramesReceived     atomic.Uint64
	MessagesSent, MessagesReceived atomic.Uint64
	BytesSent, BytesReceived       atomic.Uint64 // frame bytes, headers included
	// MessagesDropped counts every message reported through Dropped;
	// QueueOverflows the part of them dropped because a queue was full.
	MessagesDropped, QueueOverflows atomic.Uint64
	// Dials and Accepts count the connections that completed a handshake
	// as the dialer and as the acceptor; Reconnects those of them to a peer
	// this transport had been connected to before.
	Dials, Accepts, Reconnects atomic.Uint64
	// HandshakesRefused counts hellos that did not match; FramesRejected
	// frames with a bad CRC or payload. Each closed its connection.
	HandshakesRefused, FramesRejected atomic.Uint64
}

// Peers is the peer transport of one node. Every envelope handed to Send is
// either written to its peer's connection (flushed to the kernel) or
// reported through Dropped, exactly once, also those still queued at Stop.
type Peers struct {
	cfg   PeersConfig
	log   zerolog.Logger
	peers map[uint64]*peer // fixed at NewPeers
	stats PeerStats

	ctx    context.Context // cancelled by Stop: ends dials in progress
	cancel context.CancelFunc
	stopc  chan struct{}
	wg     sync.WaitGroup

	// sendMu orders Send against Stop: Stop takes it exclusively to close
	// the queues' door, then reports what they still hold.
	sendMu sync.RWMutex
	closed bool // under sendMu

	mu       sync.Mutex
	ln       net.Listener
	started  bool
	stopped  bool
	conns    map[net.Conn]struct{} // every open connection, handshaking ones too
	warnedAt map[string]time.Time  // last warning per kind (bounded: kinds × peers)
}

// peer is one remote node: its queue, its writer and its live connection.
type peer struct {
	id    uint64
	addr  string
	dials bool // this node dials the peer (its id is higher)
	queue chan Envelope

	conn      atomic.Pointer[peerConn] // the live connection, nil while disconnected
	connected atomic.Bool              // a connection was installed once
}

// peerConn is one connection that completed its handshake. Only the peer's
// writer writes to it.
type peerConn struct {
	nc        net.Conn
	bw        *bufio.Writer
	closeOnce sync.Once
}

func (c *peerConn) close() { c.closeOnce.Do(func() { c.nc.Close() }) }

// NewPeers validates cfg and returns a transport that is neither listening
// nor running yet (Listen, Start).
func NewPeers(cfg PeersConfig) (*Peers, error) {
	if cfg.NodeID == 0 {
		return nil, errors.New("raftlog: peers: node id 0")
	}
	if cfg.Listen == "" {
		return nil, errors.New("raftlog: peers: no listen address")
	}
	if cfg.Deliver == nil || cfg.Dropped == nil {
		return nil, errors.New("raftlog: peers: Deliver and Dropped are required")
	}
	ps := &Peers{
		cfg:      cfg,
		log:      cfg.Logger,
		peers:    make(map[uint64]*peer, len(cfg.Addrs)),
		stopc:    make(chan struct{}),
		conns:    make(map[net.Conn]struct{}),
		warnedAt: make(map[string]time.Time),
	}
	for id, addr := range cfg.Addrs {
		if id == 0 || id == cfg.NodeID {
			return nil, fmt.Errorf("raftlog: peers: bad peer id %d", id)
		}
		p := &peer{id: id, addr: addr, dials: cfg.NodeID < id, queue: make(chan Envelope, peerQueueLen)}
		if p.dials && addr == "" {
			return nil, fmt.Errorf("raftlog: peers: no address for peer %d", id)
		}
		ps.peers[id] = p
	}
	ps.ctx, ps.cancel = context.WithCancel(context.Background())
	return ps, nil
}

// Listen binds the listen address, so that a busy port is reported at
// start-up. Start calls it if it was not called.
func (ps *Peers) Listen() error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.stopped {
		return errors.New("raftlog: peers: stopped")
	}
	if ps.ln != nil {
		return nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ps.ctx, "tcp", ps.cfg.Listen)
	if err != nil {
		return fmt.Errorf("raftlog: peers: listen %s: %w", ps.cfg.Listen, err)
	}
	ps.ln = ln
	return nil
}

// Addr is the bound listen address (nil before Listen): with port 0 in the
// configuration, the one the system chose.
func (ps *Peers) Addr() net.Addr {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.ln == nil {
		return nil
	}
	return ps.ln.Addr()
}

// Start runs the transport: the accept loop, a dialer per peer with a
// higher id and a writer per peer.
func (ps *Peers) Start() error {
	if err := ps.Listen(); err != nil {
		return err
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.started || ps.stopped {
		return errors.New("raftlog: peers: already started")
	}
	ps.started = true
	ps.wg.Add(1)
	go ps.acceptLoop(ps.ln)
	for _, p := range ps.peers {
		ps.wg.Add(1)
		go ps.writeLoop(p)
		if p.dials {
			ps.wg.Add(1)
			go ps.dialLoop(p)
		}
	}
	return nil
}

// Stop closes the listener and every connection, waits (at most
// peerStopTimeout) for the goroutines and reports every message still
// queued as dropped. Send after Stop drops and reports.
func (ps *Peers) Stop() {
	ps.mu.Lock()
	if ps.stopped {
		ps.mu.Unlock()
		return
	}
	ps.stopped = true
	close(ps.stopc)
	ps.cancel()
	if ps.ln != nil {
		ps.ln.Close()
	}
	for nc := range ps.conns {
		nc.Close()
	}
	ps.mu.Unlock()

	done := make(chan struct{})
	go func() {
		ps.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(peerStopTimeout):
		ps.log.Error().Dur("waited", peerStopTimeout).Msg("peers: goroutines did not end after Stop")
	}

	ps.sendMu.Lock()
	ps.closed = true
	ps.sendMu.Unlock()
	for _, p := range ps.peers {
		for drained := false; !drained; {
			select {
			case e := <-p.queue:
				ps.drop(p.id, e)
			default:
				drained = true
			}
		}
	}
}

// Send enqueues each envelope for its destination (Msg.GetTo()). It never
// blocks: a message for an unknown or disconnected peer, or for a peer
// whose queue is full, is reported through Dropped (Raft resends).
func (ps *Peers) Send(envs []Envelope) {
	ps.sendMu.RLock()
	defer ps.sendMu.RUnlock()
	for _, e := range envs {
		to := e.Msg.GetTo()
		p := ps.peers[to]
		if ps.closed || p == nil || p.current() == nil {
			ps.drop(to, e)
			continue
		}
		select {
		case p.queue <- e:
		default:
			ps.stats.QueueOverflows.Add(1)
			ps.drop(to, e)
		}
	}
}

// Reachable reports whether a connection to peer id is live now.
func (ps *Peers) Reachable(id uint64) bool {
	p := ps.peers[id]
	return p != nil && p.current() != nil
}

// Stats returns the transport's counters.
func (ps *Peers) Stats() *PeerStats { return &ps.stats }

func (ps *Peers) drop(to uint64, e Envelope) {
	ps.stats.MessagesDropped.Add(1)
	ps.cfg.Dropped(to, e)
}

func (p *peer) current() *peerConn { return p.conn.Load() }

// install makes c the peer's live connection and closes the one it
// replaces. It reports whether the peer had been connected before.
func (p *peer) install(c *peerConn) (again bool) {
	old := p.conn.Swap(c)
	again = p.connected.Swap(true)
	if old != nil {
		old.close()
	}
	return again
}

// uninstall forgets c if it is still the live connection.
func (p *peer) uninstall(c *peerConn) {
	p.conn.CompareAndSwap(c, nil)
}

// track registers a new connection so that Stop closes it; false (and the
// connection closed) if the transport is stopping.
func (ps *Peers) track(nc net.Conn) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.stopped {
		nc.Close()
		return false
	}
	ps.conns[nc] = struct{}{}
	return true
}

func (ps *Peers) untrack(nc net.Conn) {
	nc.Close()
	ps.mu.Lock()
	delete(ps.conns, nc)
	ps.mu.Unlock()
}

// warnAllowed rate-limits the warnings of one kind to one per
// peerWarnInterval.
func (ps *Peers) warnAllowed(kind string) bool {
	now := time.Now()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if t, ok := ps.warnedAt[kind]; ok && now.Sub(t) < peerWarnInterval {
		return false
	}
	ps.warnedAt[kind] = now
	return true
}

func appendPeerHello(dst []byte, cluster, sender, receiver uint64) []byte {
	dst = append(dst, peerMagic...)
	dst = binary.BigEndian.AppendUint64(dst, cluster)
	dst = binary.BigEndian.AppendUint64(dst, sender)
	return binary.BigEndian.AppendUint64(dst, receiver)
}

type peerHello struct{ cluster, sender, receiver uint64 }

func readPeerHello(r io.Reader) (peerHello, error) {
	var b [peerHelloBytes]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return peerHello{}, err
	}
	if string(b[:4]) != peerMagic {
		return peerHello{}, errPeerBadMagic
	}
	return peerHello{
		cluster:  binary.BigEndian.Uint64(b[4:12]),
		sender:   binary.BigEndian.Uint64(b[12:20]),
		receiver: binary.BigEndian.Uint64(b[20:28]),
	}, nil
}

var errPeerBadMagic = errors.New("not a flashsale peer hello")

// refuse counts and (rate-limited) logs a hello that did not match.
func (ps *Peers) refuse(kind string, remote net.Addr, h peerHello, reason string) {
	ps.stats.HandshakesRefused.Add(1)
	if !ps.warnAllowed("hello:" + kind) {
		return
	}
	ps.log.Warn().Str("remote", remote.String()).Str("reason", reason).
		Str("cluster", fmt.Sprintf("%016x", h.cluster)).Str("want_cluster", fmt.Sprintf("%016x", ps.cfg.ClusterID)).
		Uint64("sender", h.sender).Uint64("receiver", h.receiver).
		Msg("peers: handshake refused, connection closed (check the cluster file of both nodes)")
}

func (ps *Peers) acceptLoop(ln net.Listener) {
	defer ps.wg.Done()
	var wait time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			select {
			case <-ps.stopc:
				return
			default:
			}
			// Out of descriptors or the like: wait a little, do not spin.
			wait = min(max(2*wait, peerBackoffMin), peerBackoffMax)
			if ps.warnAllowed("accept") {
				ps.log.Warn().Err(err).Msg("peers: accept failed")
			}
			if !ps.sleep(wait) {
				return
			}
			continue
		}
		wait = 0
		if !ps.track(nc) {
			continue
		}
		ps.wg.Add(1)
		go ps.serveAccepted(nc)
	}
}

// serveAccepted checks a dialer's hello, answers it and reads the
// connection until it fails.
func (ps *Peers) serveAccepted(nc net.Conn) {
	defer ps.wg.Done()
	defer ps.untrack(nc)
	br := bufio.NewReaderSize(nc, 64<<10)
	nc.SetDeadline(time.Now().Add(peerHelloTimeout))
	h, err := readPeerHello(br)
	if err != nil {
		if errors.Is(err, errPeerBadMagic) {
			ps.refuse("magic", nc.RemoteAddr(), h, err.Error())
		}
		return
	}
	p := ps.peers[h.sender]
	switch {
	case h.cluster != ps.cfg.ClusterID:
		ps.refuse("cluster", nc.RemoteAddr(), h, "another cluster id")
		return
	case h.receiver != ps.cfg.NodeID:
		ps.refuse("receiver", nc.RemoteAddr(), h, "the dialer expects another node at this address")
		return
	case p == nil:
		ps.refuse("sender", nc.RemoteAddr(), h, "unknown sender node id")
		return
	case p.dials:
		ps.refuse("direction", nc.RemoteAddr(), h, "sender's id is higher than this node's: this node dials it")
		return
	}
	if _, err := nc.Write(appendPeerHello(nil, ps.cfg.ClusterID, ps.cfg.NodeID, p.id)); err != nil {
		return
	}
	nc.SetDeadline(time.Time{})
	ps.stats.Accepts.Add(1)
	ps.run(p, nc, br)
}

// dialLoop keeps one connection to a peer with a higher id, redialing with
// a jittered exponential backoff.
func (ps *Peers) dialLoop(p *peer) {
	defer ps.wg.Done()
	var wait time.Duration
	for {
		select {
		case <-ps.stopc:
			return
		default:
		}
		// A connection that held for a while starts the backoff over; one
		// that fails at once (a peer that keeps closing it) does not, so a
		// flapping link redials at most about once per peerBackoffMax.
		if ps.dialOnce(p) >= peerBackoffMax {
			wait = 0
		}
		wait = min(max(2*wait, peerBackoffMin), peerBackoffMax)
		if !ps.sleep(wait/2 + rand.N(wait/2+1)) {
			return
		}
	}
}

// dialOnce dials p, does the handshake and reads the connection until it
// fails; it returns how long the connection was live (0 if the handshake
// failed).
func (ps *Peers) dialOnce(p *peer) time.Duration {
	d := net.Dialer{Timeout: peerDialTimeout}
	nc, err := d.DialContext(ps.ctx, "tcp", p.addr)
	if err != nil {
		if ps.ctx.Err() == nil && ps.warnAllowed(fmt.Sprintf("dial:%d", p.id)) {
			ps.log.Warn().Err(err).Uint64("peer", p.id).Str("addr", p.addr).Msg("peers: peer unreachable, retrying")
		}
		return 0
	}
	if !ps.track(nc) {
		return 0
	}
	defer ps.untrack(nc)
	nc.SetDeadline(time.Now().Add(peerHelloTimeout))
	if _, err := nc.Write(appendPeerHello(nil, ps.cfg.ClusterID, ps.cfg.NodeID, p.id)); err != nil {
		return 0
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	h, err := readPeerHello(br)
	if err != nil {
		if errors.Is(err, errPeerBadMagic) {
			ps.refuse("magic", nc.RemoteAddr(), h, err.Error())
		} else if ps.ctx.Err() == nil && ps.warnAllowed(fmt.Sprintf("hello:%d", p.id)) {
			// The acceptor closes without answering when it refuses us.
			ps.log.Warn().Err(err).Uint64("peer", p.id).Str("addr", p.addr).
				Msg("peers: no hello from peer (it refused ours? check its log and the cluster file)")
		}
		return 0
	}
	switch {
	case h.cluster != ps.cfg.ClusterID:
		ps.refuse("cluster", nc.RemoteAddr(), h, "another cluster id")
		return 0
	case h.sender != p.id || h.receiver != ps.cfg.NodeID:
		ps.refuse("identity", nc.RemoteAddr(), h, "another node answers at the peer's address")
		return 0
	}
	nc.SetDeadline(time.Time{})
	ps.stats.Dials.Add(1)
	start := time.Now()
	ps.run(p, nc, br)
	return max(time.Since(start), 1)
}

// run installs a connection that completed its handshake and reads its
// frames until it fails or is replaced.
func (ps *Peers) run(p *peer, nc net.Conn, br *bufio.Reader) {
	c := &peerConn{nc: nc, bw: bufio.NewWriterSize(nc, 64<<10)}
	if p.install(c) {
		ps.stats.Reconnects.Add(1)
	}
	ps.log.Info().Uint64("peer", p.id).Str("remote", nc.RemoteAddr().String()).Msg("peers: connected")
	err := ps.readLoop(p, nc, br)
	p.uninstall(c)
	c.close()
	select {
	case <-ps.stopc:
	default:
		ps.log.Warn().Err(err).Uint64("peer", p.id).Msg("peers: connection lost")
	}
}

var errPeerBadFrame = errors.New("malformed frame")

func (ps *Peers) readLoop(p *peer, nc net.Conn, br *bufio.Reader) error {
	var hdr [8]byte
	var buf []byte
	for {
		nc.SetReadDeadline(time.Now().Add(peerReadTimeout))
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint32(hdr[0:4]))
		sum := binary.BigEndian.Uint32(hdr[4:8])
		if n == 0 || n > peerFrameBytesMax {
			ps.stats.FramesRejected.Add(1)
			return fmt.Errorf("%w: length %d", errPeerBadFrame, n)
		}
		var err error
		if buf, err = readPeerPayload(nc, br, buf, n); err != nil {
			return err
		}
		if crc32.Checksum(buf, peerCastagnoli) != sum {
			ps.stats.FramesRejected.Add(1)
			return fmt.Errorf("%w: bad CRC", errPeerBadFrame)
		}
		envs, err := decodePeerFrame(buf)
		if err != nil {
			ps.stats.FramesRejected.Add(1)
			return err
		}
		ps.stats.BytesReceived.Add(uint64(8 + n))
		if len(envs) > 0 { // else a keepalive
			ps.stats.FramesReceived.Add(1)
			ps.stats.MessagesReceived.Add(uint64(len(envs)))
			ps.cfg.Deliver(p.id, envs)
		}
		if cap(buf) > peerReadBufferBytesKeep {
			buf = nil
		}
	}
}

// readPeerPayload reads n bytes into buf, growing it only as the bytes
// arrive; each chunk has peerReadTimeout.
func readPeerPayload(nc net.Conn, r io.Reader, buf []byte, n int) ([]byte, error) {
	buf = buf[:0]
	for len(buf) < n {
		nc.SetReadDeadline(time.Now().Add(peerReadTimeout))
		chunk := min(n-len(buf), peerReadChunkBytes)
		if cap(buf)-len(buf) < chunk {
			buf = append(buf[:cap(buf)], make([]byte, chunk)...)[:len(buf)]
		}
		if _, err := io.ReadFull(r, buf[len(buf):len(buf)+chunk]); err != nil {
			return buf, err
		}
		buf = buf[:len(buf)+chunk]
	}
	return buf, nil
}

// decodePeerFrame decodes a frame's payload; the messages do not alias it.
func decodePeerFrame(b []byte) ([]Envelope, error) {
	count, n := binary.Uvarint(b)
	// Each message takes at least two bytes (partition, length).
	if n <= 0 || count > uint64(len(b)-n)/2 {
		return nil, fmt.Errorf("%w: message count", errPeerBadFrame)
	}
	b = b[n:]
	envs := make([]Envelope, 0, count)
	for i := uint64(0); i < count; i++ {
		part, n := binary.Uvarint(b)
		if n <= 0 || part > math.MaxUint32 {
			return nil, fmt.Errorf("%w: partition", errPeerBadFrame)
		}
		b = b[n:]
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return nil, fmt.Errorf("%w: message length", errPeerBadFrame)
		}
		m := &raftpb.Message{}
		if err := proto.Unmarshal(b[n:n+int(l)], m); err != nil {
			return nil, fmt.Errorf("%w: %v", errPeerBadFrame, err)
		}
		envs = append(envs, Envelope{Partition: uint32(part), Msg: m})
		b = b[n+int(l):]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: trailing bytes", errPeerBadFrame)
	}
	return envs, nil
}

// peerMessageOverheadMax is a message's bytes in a frame besides its proto
// bytes, at most, plus the frame's count.
const peerMessageOverheadMax = 3 * binary.MaxVarintLen64

// peerWriteYieldsMax is the most times writeLoop yields the processor
// while filling one frame.
const peerWriteYieldsMax = 4

// writeLoop drains a peer's queue into frames on its live connection, and
// sends a keepalive when it had nothing to send for a keepalive interval.
func (ps *Peers) writeLoop(p *peer) {
	defer ps.wg.Done()
	var (
		batch []Envelope // the frame's envelopes, reported if it fails
		body  []byte     // the frame's messages, after the count
		carry *Envelope  // the message that did not fit the last frame
		wrote bool       // a frame went since the last tick
	)
	ticker := time.NewTicker(peerKeepaliveInterval)
	defer ticker.Stop()
	for {
		if carry == nil {
			select {
			case <-ps.stopc:
				return
			case <-ticker.C:
				if !wrote {
					ps.writeFrame(p, nil, nil)
				}
				wrote = false
				continue
			case e := <-p.queue:
				carry = &e
			}
		}
		batch, body = batch[:0], body[:0]
		seen, yields := 0, 0
		next := carry
		carry = nil
		for next != nil {
			e := *next
			next = nil
			size := proto.Size(e.Msg)
			if size+peerMessageOverheadMax > peerFrameBytesMax {
				ps.log.Error().Uint64("peer", p.id).Uint32("partition", e.Partition).
					Stringer("type", e.Msg.GetType()).Int("bytes", size).Msg("peers: message too large for a frame, dropped")
				ps.drop(p.id, e)
			} else if len(batch) > 0 && len(body)+size+peerMessageOverheadMax > peerFrameBytesMax {
				carry = &e
				break
			} else {
				start := len(body)
				body = binary.AppendUvarint(body, uint64(e.Partition))
				body = binary.AppendUvarint(body, uint64(size))
				protoStart := len(body)
				var err error
				body, err = proto.MarshalOptions{}.MarshalAppend(body, e.Msg)
				if err != nil || len(body)-protoStart != size {
					// Cannot happen for a valid message that nobody
					// changes meanwhile; never send a frame whose
					// lengths lie.
					ps.log.Error().Err(err).Uint64("peer", p.id).Msg("peers: message did not marshal, dropped")
					body = body[:start]
					ps.drop(p.id, e)
				} else {
					batch = append(batch, e)
				}
			}
			if len(batch) >= peerBatchMessagesMax || len(body) >= peerBatchBytesMax {
				break
			}
			select {
			case e := <-p.queue:
				next = &e
			default:
				// The loop's next round is often a few microseconds
				// away (a burst of deliveries): yield for as long as
				// the last look found more, so the frame carries it.
				if yields < peerWriteYieldsMax && len(batch) > seen {
					seen, yields = len(batch), yields+1
					runtime.Gosched()
					select {
					case e := <-p.queue:
						next = &e
					default:
					}
				}
			}
		}
		if len(batch) > 0 {
			ps.writeFrame(p, batch, body)
			wrote = true
		}
		if cap(body) > peerReadBufferBytesKeep {
			body = nil
		}
		clear(batch[:cap(batch)]) // let the messages go
	}
}

// writeFrame writes one frame (a keepalive if batch is empty) on the
// peer's live connection; without one, or if the write fails, the frame's
// messages are reported dropped.
func (ps *Peers) writeFrame(p *peer, batch []Envelope, body []byte) {
	c := p.current()
	if c == nil {
		for _, e := range batch {
			ps.drop(p.id, e)
		}
		return
	}
	var head [8 + binary.MaxVarintLen64]byte
	count := binary.AppendUvarint(head[8:8], uint64(len(batch)))
	n := len(count) + len(body)
	binary.BigEndian.PutUint32(head[0:4], uint32(n))
	binary.BigEndian.PutUint32(head[4:8], crc32.Update(crc32.Checksum(count, peerCastagnoli), peerCastagnoli, body))
	c.nc.SetWriteDeadline(time.Now().Add(peerWriteTimeout + time.Duration(n/peerWriteBytesPerSecondMin)*time.Second))
	_, err := c.bw.Write(head[:8+len(count)])
	if err == nil {
		_, err = c.bw.Write(body)
	}
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		// The reader sees the closed connection and the dialer redials.
		c.close()
		p.uninstall(c)
		select {
		case <-ps.stopc:
		default:
			ps.log.Warn().Err(err).Uint64("peer", p.id).Int("messages", len(batch)).Msg("peers: write failed, connection closed")
		}
		for _, e := range batch {
			ps.drop(p.id, e)
		}
		return
	}
	ps.stats.BytesSent.Add(uint64(8 + n))
	if len(batch) > 0 {
		ps.stats.FramesSent.Add(1)
		ps.stats.MessagesSent.Add(uint64(len(batch)))
	}
}

// sleep waits d or until Stop; false if stopped.
func (ps *Peers) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ps.stopc:
		return false
	case <-t.C:
		return true
	}
}

// liveConns counts the peers with a live connection (for tests).
func (ps *Peers) liveConns() int {
	n := 0
	for _, p := range ps.peers {
		if p.current() != nil {
			n++
		}
	}
	return n
}
