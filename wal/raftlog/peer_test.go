package raftlog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
)

const peerTestCluster = 0xC1A5_7E12_0000_0007

// peerLeakCheck registers, before any other cleanup of the test, a check
// that every goroutine the test started has ended (cleanups run last
// registered first, so this one runs after every Stop).
func peerLeakCheck(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// peerRecorder is a node's side of Deliver and Dropped.
type peerRecorder struct {
	mu      sync.Mutex
	got     map[uint64][]Envelope // by sender, in arrival order
	calls   int                   // Deliver calls
	dropped map[uint64][]Envelope // by destination
}

func newPeerRecorder() *peerRecorder {
	return &peerRecorder{got: map[uint64][]Envelope{}, dropped: map[uint64][]Envelope{}}
}

func (r *peerRecorder) deliver(from uint64, envs []Envelope) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	r.got[from] = append(r.got[from], envs...)
}

func (r *peerRecorder) drop(to uint64, e Envelope) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropped[to] = append(r.dropped[to], e)
}

func (r *peerRecorder) received(from uint64) []Envelope {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Envelope(nil), r.got[from]...)
}

func (r *peerRecorder) receivedTotal() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, envs := range r.got {
		n += len(envs)
	}
	return n
}

func (r *peerRecorder) deliverCalls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

func (r *peerRecorder) droppedFor(to uint64) []Envelope {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Envelope(nil), r.dropped[to]...)
}

func (r *peerRecorder) droppedTotal() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, envs := range r.dropped {
		n += len(envs)
	}
	return n
}

// waitPeer polls cond every few milliseconds for at most d.
func waitPeer(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// peerTestMsg is a MsgApp from→to numbered seq (in Index), with an entry
// of dataBytes bytes derived from seq when dataBytes > 0.
func peerTestMsg(from, to, seq uint64, dataBytes int) *raftpb.Message {
	m := &raftpb.Message{
		Type:   raftpb.MsgApp.Enum(),
		To:     proto.Uint64(to),
		From:   proto.Uint64(from),
		Term:   proto.Uint64(3),
		Index:  proto.Uint64(seq),
		Commit: proto.Uint64(seq / 2),
	}
	if dataBytes > 0 {
		// A pattern of seq and a counter, repeated by doubling copies.
		data := make([]byte, dataBytes)
		for i := 0; i < min(251, dataBytes); i++ {
			data[i] = byte(seq + uint64(i)*7)
		}
		for n := min(251, dataBytes); n < dataBytes; n *= 2 {
			copy(data[n:], data[:n])
		}
		m.Entries = []*raftpb.Entry{{Term: proto.Uint64(3), Index: proto.Uint64(seq + 1), Data: data}}
	}
	return m
}

func newTestPeers(t *testing.T, id, cluster uint64, listen string, addrs map[uint64]string) (*Peers, *peerRecorder) {
	t.Helper()
	rec := newPeerRecorder()
	ps, err := NewPeers(PeersConfig{
		NodeID:    id,
		Addrs:     addrs,
		Listen:    listen,
		ClusterID: cluster,
		Deliver:   rec.deliver,
		Dropped:   rec.drop,
		Logger:    zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel).With().Uint64("node", id).Logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ps.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ps.Stop)
	return ps, rec
}

// startPeerCluster starts nodes 1..n on loopback, the highest id first so
// that each dialer knows the address of the nodes it dials, and waits
// until every pair is connected.
func startPeerCluster(t *testing.T, n int) ([]*Peers, []*peerRecorder, []string) {
	t.Helper()
	ps := make([]*Peers, n+1)
	recs := make([]*peerRecorder, n+1)
	addrs := make([]string, n+1)
	for id := n; id >= 1; id-- {
		m := map[uint64]string{}
		for other := 1; other <= n; other++ {
			if other != id {
				m[uint64(other)] = addrs[other] // "" for lower ids: they dial
			}
		}
		ps[id], recs[id] = newTestPeers(t, uint64(id), peerTestCluster, "127.0.0.1:0", m)
		addrs[id] = ps[id].Addr().String()
	}
	waitPeer(t, 5*time.Second, "every pair connected", func() bool {
		for id := 1; id <= n; id++ {
			for other := 1; other <= n; other++ {
				if other != id && !ps[id].Reachable(uint64(other)) {
					return false
				}
			}
		}
		return true
	})
	return ps, recs, addrs
}

func TestPeerExchange(t *testing.T) {
	peerLeakCheck(t)
	const nodes, perPair, bigSeq = 3, 300, 150
	ps, recs, _ := startPeerCluster(t, nodes)

	// sent[from][to] is what from sent to to, in order.
	sent := make([][][]Envelope, nodes+1)
	for from := 1; from <= nodes; from++ {
		sent[from] = make([][]Envelope, nodes+1)
		for seq := uint64(1); seq <= perPair; seq++ {
			for to := 1; to <= nodes; to++ {
				if to == from {
					continue
				}
				size := int(seq*37) % 2000
				if seq == bigSeq {
					size = peerBatchBytesMax + 4096 // beyond a frame's batch bound
				}
				e := Envelope{Partition: uint32(seq % 8), Msg: peerTestMsg(uint64(from), uint64(to), seq, size)}
				sent[from][to] = append(sent[from][to], e)
			}
		}
	}
	var wg sync.WaitGroup
	for from := 1; from <= nodes; from++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Interleave the destinations in batches of 7, as the Raft loop does.
			var all []Envelope
			for i := 0; i < perPair; i++ {
				for to := 1; to <= nodes; to++ {
					if to != from {
						all = append(all, sent[from][to][i])
					}
				}
			}
			for len(all) > 0 {
				k := min(7, len(all))
				ps[from].Send(all[:k])
				all = all[k:]
			}
		}()
	}
	wg.Wait()

	for to := 1; to <= nodes; to++ {
		waitPeer(t, 20*time.Second, fmt.Sprintf("node %d received everything", to), func() bool {
			return recs[to].receivedTotal() == (nodes-1)*perPair
		})
	}
	for to := 1; to <= nodes; to++ {
		for from := 1; from <= nodes; from++ {
			if from == to {
				continue
			}
			got, want := recs[to].received(uint64(from)), sent[from][to]
			if len(got) != len(want) {
				t.Fatalf("%d→%d: %d messages, want %d", from, to, len(got), len(want))
			}
			for i := range want {
				if got[i].Partition != want[i].Partition || !proto.Equal(got[i].Msg, want[i].Msg) {
					t.Fatalf("%d→%d message %d: got partition %d index %d, want partition %d index %d (or bodies differ)",
						from, to, i, got[i].Partition, got[i].Msg.GetIndex(), want[i].Partition, want[i].Msg.GetIndex())
				}
			}
		}
		if n := recs[to].droppedTotal(); n != 0 {
			t.Errorf("node %d reported %d drops", to, n)
		}
		st := ps[to].Stats()
		if got, want := st.MessagesSent.Load(), uint64((nodes-1)*perPair); got != want {
			t.Errorf("node %d: MessagesSent %d, want %d", to, got, want)
		}
		if got, want := st.MessagesReceived.Load(), uint64((nodes-1)*perPair); got != want {
			t.Errorf("node %d: MessagesReceived %d, want %d", to, got, want)
		}
		// One Deliver per frame.
		if got, want := uint64(recs[to].deliverCalls()), st.FramesReceived.Load(); got != want {
			t.Errorf("node %d: %d Deliver calls for %d frames", to, got, want)
		}
	}
}

func TestPeerOneConnectionPerPair(t *testing.T) {
	peerLeakCheck(t)
	const nodes = 3
	ps, recs, _ := startPeerCluster(t, nodes)
	// Traffic both ways on every pair.
	for from := 1; from <= nodes; from++ {
		var envs []Envelope
		for to := 1; to <= nodes; to++ {
			if to != from {
				envs = append(envs, Envelope{Partition: 1, Msg: peerTestMsg(uint64(from), uint64(to), 1, 10)})
			}
		}
		ps[from].Send(envs)
	}
	for id := 1; id <= nodes; id++ {
		waitPeer(t, 5*time.Second, "traffic arrived", func() bool { return recs[id].receivedTotal() == nodes-1 })
	}
	for id := 1; id <= nodes; id++ {
		st := ps[id].Stats()
		// Node id dials the nodes above it and accepts those below.
		wantDials, wantAccepts := uint64(nodes-id), uint64(id-1)
		if st.Dials.Load() != wantDials || st.Accepts.Load() != wantAccepts {
			t.Errorf("node %d: %d dials and %d accepts, want %d and %d", id, st.Dials.Load(), st.Accepts.Load(), wantDials, wantAccepts)
		}
		if n := ps[id].liveConns(); n != nodes-1 {
			t.Errorf("node %d: %d live connections, want %d", id, n, nodes-1)
		}
		ps[id].mu.Lock()
		open := len(ps[id].conns)
		ps[id].mu.Unlock()
		if open != nodes-1 {
			t.Errorf("node %d: %d open sockets, want %d", id, open, nodes-1)
		}
	}
}

func TestPeerReconnect(t *testing.T) {
	peerLeakCheck(t)
	ps, recs, addrs := startPeerCluster(t, 2)
	ps[1].Send([]Envelope{{Partition: 2, Msg: peerTestMsg(1, 2, 1, 100)}})
	waitPeer(t, 5*time.Second, "first message", func() bool { return recs[2].receivedTotal() == 1 })

	ps[2].Stop()
	waitPeer(t, 5*time.Second, "node 1 sees node 2 gone", func() bool { return !ps[1].Reachable(2) })
	var down []Envelope
	for seq := uint64(2); seq <= 11; seq++ {
		down = append(down, Envelope{Partition: 2, Msg: peerTestMsg(1, 2, seq, 100)})
	}
	ps[1].Send(down)
	if n := len(recs[1].droppedFor(2)); n != len(down) {
		t.Fatalf("%d messages for the stopped peer reported dropped, want %d", n, len(down))
	}
	time.Sleep(300 * time.Millisecond) // a few failed dials: the backoff grows

	restarted := time.Now()
	p2, rec2 := newTestPeers(t, 2, peerTestCluster, addrs[2], map[uint64]string{1: ""})
	seq := uint64(100)
	for rec2.receivedTotal() == 0 || recs[1].received(2) == nil {
		if time.Since(restarted) > 2*time.Second {
			t.Fatalf("no traffic 2 s after the restart (1→2: %d, 2→1: %d)", rec2.receivedTotal(), len(recs[1].received(2)))
		}
		seq++
		ps[1].Send([]Envelope{{Partition: 0, Msg: peerTestMsg(1, 2, seq, 10)}})
		p2.Send([]Envelope{{Partition: 0, Msg: peerTestMsg(2, 1, seq, 10)}})
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("traffic resumed %v after the restart", time.Since(restarted))
	if got := ps[1].Stats().Reconnects.Load(); got != 1 {
		t.Errorf("node 1 counted %d reconnects, want 1", got)
	}
	for _, e := range rec2.received(1) {
		if e.Msg.GetIndex() < 100 {
			t.Errorf("message %d, sent while the peer was down, arrived", e.Msg.GetIndex())
		}
	}
}

// rawPeerHello is a hello as the wire format defines it.
func rawPeerHello(cluster, sender, receiver uint64) []byte {
	b := []byte("FSR1")
	b = binary.BigEndian.AppendUint64(b, cluster)
	b = binary.BigEndian.AppendUint64(b, sender)
	return binary.BigEndian.AppendUint64(b, receiver)
}

// rawPeerFrame encodes messages as one frame, per the wire format.
func rawPeerFrame(t *testing.T, envs ...Envelope) []byte {
	t.Helper()
	payload := binary.AppendUvarint(nil, uint64(len(envs)))
	for _, e := range envs {
		b, err := proto.Marshal(e.Msg)
		if err != nil {
			t.Fatal(err)
		}
		payload = binary.AppendUvarint(payload, uint64(e.Partition))
		payload = binary.AppendUvarint(payload, uint64(len(b)))
		payload = append(payload, b...)
	}
	return rawFrameOf(payload, crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)))
}

func rawFrameOf(payload []byte, crc uint32) []byte {
	f := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	f = binary.BigEndian.AppendUint32(f, crc)
	return append(f, payload...)
}

// rawDial connects to addr and sends hello; with answer it reads and
// checks the acceptor's hello.
func rawDial(t *testing.T, addr string, hello []byte) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write(hello); err != nil {
		t.Fatal(err)
	}
	return c
}

func readRawHello(t *testing.T, c net.Conn, want []byte) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("no hello answer: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("hello answer %x, want %x", got, want)
	}
}

// rawKeepalive is the frame of no message.
var rawKeepalive = rawFrameOf([]byte{0}, crc32.Checksum([]byte{0}, crc32.MakeTable(crc32.Castagnoli)))

// expectClosed asserts that the other end closes c within 2 s, having sent
// nothing but keepalives.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	got, err := io.ReadAll(c) // nil at EOF; a reset is a close too
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after 2 s")
	}
	for len(got) > 0 {
		if !bytes.HasPrefix(got, rawKeepalive) {
			t.Fatalf("received %x before the close; want nothing but keepalives", got)
		}
		got = got[len(rawKeepalive):]
	}
}

// readRawMessages reads frames from c, skipping keepalives, and returns
// the messages of the first frame that has some.
func readRawMessages(t *testing.T, c net.Conn) []Envelope {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			t.Fatal(err)
		}
		payload := make([]byte, binary.BigEndian.Uint32(hdr[:4]))
		if _, err := io.ReadFull(c, payload); err != nil {
			t.Fatal(err)
		}
		if crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)) != binary.BigEndian.Uint32(hdr[4:]) {
			t.Fatal("frame CRC does not match")
		}
		envs, err := decodePeerFrame(payload)
		if err != nil {
			t.Fatal(err)
		}
		if len(envs) > 0 {
			return envs
		}
	}
}

func TestPeerHelloRefused(t *testing.T) {
	peerLeakCheck(t)
	// Node 2 knows node 1 (which dials it) and node 3 (which it dials, at
	// an address where nobody listens).
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	p2, rec2 := newTestPeers(t, 2, peerTestCluster, "127.0.0.1:0", map[uint64]string{1: "", 3: deadAddr})
	addr := p2.Addr().String()

	bad := []struct {
		name  string
		hello []byte
	}{
		{"wrong cluster", rawPeerHello(peerTestCluster+1, 1, 2)},
		{"unknown sender", rawPeerHello(peerTestCluster, 9, 2)},
		{"sender with a higher id", rawPeerHello(peerTestCluster, 3, 2)},
		{"wrong receiver", rawPeerHello(peerTestCluster, 1, 5)},
		{"bad magic", append([]byte("HTTP"), rawPeerHello(peerTestCluster, 1, 2)[4:]...)},
	}
	for i, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			c := rawDial(t, addr, tc.hello)
			// A frame right behind the hello must not be delivered either.
			c.Write(rawPeerFrame(t, Envelope{Partition: 1, Msg: peerTestMsg(1, 2, 1, 10)}))
			expectClosed(t, c)
			if got := p2.Stats().HandshakesRefused.Load(); got != uint64(i+1) {
				t.Errorf("HandshakesRefused %d, want %d", got, i+1)
			}
		})
	}
	if n := rec2.deliverCalls(); n != 0 {
		t.Fatalf("%d Deliver calls after refused hellos", n)
	}
	if p2.Reachable(1) {
		t.Fatal("node 1 reachable after refused hellos")
	}

	// The same exchange with the right hello is answered and delivered.
	c := rawDial(t, addr, rawPeerHello(peerTestCluster, 1, 2))
	readRawHello(t, c, rawPeerHello(peerTestCluster, 2, 1))
	c.Write(rawPeerFrame(t, Envelope{Partition: 1, Msg: peerTestMsg(1, 2, 1, 10)}))
	waitPeer(t, 2*time.Second, "delivery after a good hello", func() bool { return rec2.receivedTotal() == 1 })
}

func TestPeerClusterMismatch(t *testing.T) {
	peerLeakCheck(t)
	p2, rec2 := newTestPeers(t, 2, peerTestCluster+1, "127.0.0.1:0", map[uint64]string{1: ""})
	p1, rec1 := newTestPeers(t, 1, peerTestCluster, "127.0.0.1:0", map[uint64]string{2: p2.Addr().String()})
	waitPeer(t, 5*time.Second, "node 2 refuses node 1", func() bool { return p2.Stats().HandshakesRefused.Load() >= 2 })
	if p1.Reachable(2) || p2.Reachable(1) {
		t.Fatal("a pair of different clusters is connected")
	}
	p1.Send([]Envelope{{Partition: 0, Msg: peerTestMsg(1, 2, 1, 10)}})
	p2.Send([]Envelope{{Partition: 0, Msg: peerTestMsg(2, 1, 1, 10)}})
	if rec1.droppedTotal() != 1 || rec2.droppedTotal() != 1 {
		t.Fatalf("drops reported: node 1 %d, node 2 %d; want 1 each", rec1.droppedTotal(), rec2.droppedTotal())
	}
	if rec1.deliverCalls()+rec2.deliverCalls() != 0 {
		t.Fatal("Deliver called across clusters")
	}
}

// rawPeerListener accepts connections on loopback; answer (if not nil) is
// written to the first connection after its hello is read. No connection is
// ever read further. Closed at cleanup.
func rawPeerListener(t *testing.T, answer []byte) (addr string, helloc chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	helloc = make(chan []byte, 1)
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		first := true
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			if !first {
				continue
			}
			first = false
			h := make([]byte, peerHelloBytes)
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := io.ReadFull(c, h); err != nil {
				continue
			}
			helloc <- h
			if answer != nil {
				c.Write(answer)
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String(), helloc
}

func TestPeerDialerChecksAnswer(t *testing.T) {
	peerLeakCheck(t)
	// Node 5 answers at node 2's address.
	addr, helloc := rawPeerListener(t, rawPeerHello(peerTestCluster, 5, 1))
	p1, rec1 := newTestPeers(t, 1, peerTestCluster, "127.0.0.1:0", map[uint64]string{2: addr})
	select {
	case h := <-helloc:
		if want := rawPeerHello(peerTestCluster, 1, 2); !bytes.Equal(h, want) {
			t.Fatalf("dialer's hello %x, want %x", h, want)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no hello from the dialer")
	}
	waitPeer(t, 3*time.Second, "answer refused", func() bool { return p1.Stats().HandshakesRefused.Load() == 1 })
	if p1.Reachable(2) || p1.Stats().Dials.Load() != 0 {
		t.Fatal("dialer accepted a hello from the wrong node")
	}
	if rec1.deliverCalls() != 0 {
		t.Fatal("Deliver called")
	}
}

func TestPeerBoundedQueue(t *testing.T) {
	peerLeakCheck(t)
	// Node 2 answers the hello, then never reads.
	addr, _ := rawPeerListener(t, rawPeerHello(peerTestCluster, 2, 1))
	p1, rec1 := newTestPeers(t, 1, peerTestCluster, "127.0.0.1:0", map[uint64]string{2: addr})
	waitPeer(t, 3*time.Second, "connected to the silent peer", func() bool { return p1.Reachable(2) })

	// 10 000 messages of 64 KiB (sharing one data array): 640 MiB that
	// the peer never reads, far beyond the socket buffers.
	const calls, perCall, dataBytes = 100, 100, 64 << 10
	data := peerTestMsg(1, 2, 1, dataBytes).Entries[0].Data
	var slowest, total time.Duration
	queue := p1.peers[2].queue
	for i := 0; i < calls; i++ {
		envs := make([]Envelope, perCall)
		for j := range envs {
			m := peerTestMsg(1, 2, uint64(i*perCall+j), 0)
			m.Entries = []*raftpb.Entry{{Index: proto.Uint64(1), Data: data}}
			envs[j] = Envelope{Partition: 3, Msg: m}
		}
		start := time.Now()
		p1.Send(envs)
		d := time.Since(start)
		total += d
		slowest = max(slowest, d)
		if n := len(queue); n > peerQueueLen {
			t.Fatalf("queue holds %d envelopes, cap %d", n, peerQueueLen)
		}
	}
	t.Logf("Send: slowest call %v, all %v; queue %d; dropped %d", slowest, total, len(queue), rec1.droppedTotal())
	if slowest > 200*time.Millisecond || total > 2*time.Second {
		t.Errorf("Send blocked: slowest call %v, all %v", slowest, total)
	}
	st := p1.Stats()
	if st.QueueOverflows.Load() == 0 || rec1.droppedTotal() == 0 {
		t.Fatalf("no overflow reported (overflows %d, drops %d)", st.QueueOverflows.Load(), rec1.droppedTotal())
	}
	if got := uint64(rec1.droppedTotal()); got != st.MessagesDropped.Load() {
		t.Errorf("%d drops reported, %d counted", got, st.MessagesDropped.Load())
	}

	// Every message was either written or reported, once.
	p1.Stop()
	if sent, dropped := st.MessagesSent.Load(), uint64(rec1.droppedTotal()); sent+dropped != calls*perCall {
		t.Errorf("sent %d + dropped %d != %d handed to Send", sent, dropped, calls*perCall)
	}
	if len(queue) != 0 {
		t.Errorf("%d envelopes still queued after Stop", len(queue))
	}
}

func TestPeerCorruptFrame(t *testing.T) {
	peerLeakCheck(t)
	p2, rec2 := newTestPeers(t, 2, peerTestCluster, "127.0.0.1:0", map[uint64]string{1: ""})
	addr := p2.Addr().String()
	good := func(seq uint64) []byte {
		return rawPeerFrame(t, Envelope{Partition: 4, Msg: peerTestMsg(1, 2, seq, 50)})
	}
	badCRC := good(2)
	badCRC[len(badCRC)-1] ^= 0x40 // a bit of the payload flips
	garbage := []byte{5, 0, 1}    // count 5, one message partial
	cases := []struct {
		name  string
		frame []byte
	}{
		{"bad CRC", badCRC},
		{"malformed payload", rawFrameOf(garbage, crc32.Checksum(garbage, crc32.MakeTable(crc32.Castagnoli)))},
		// A header that claims more than peerFrameBytesMax.
		{"length over the cap", binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, peerFrameBytesMax+1), 0)},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := rawDial(t, addr, rawPeerHello(peerTestCluster, 1, 2))
			readRawHello(t, c, rawPeerHello(peerTestCluster, 2, 1))
			before := rec2.deliverCalls()
			c.Write(good(1)) // proves the connection delivers
			waitPeer(t, 2*time.Second, "the valid frame delivered", func() bool { return rec2.deliverCalls() == before+1 })
			c.Write(append(tc.frame, good(3)...))
			expectClosed(t, c)
			if got := rec2.deliverCalls(); got != before+1 {
				t.Errorf("%d Deliver calls after the bad frame", got-before-1)
			}
			if got := p2.Stats().FramesRejected.Load(); got != uint64(i+1) {
				t.Errorf("FramesRejected %d, want %d", got, i+1)
			}
		})
	}
}

func TestPeerAcceptReplacesOlder(t *testing.T) {
	peerLeakCheck(t)
	p2, _ := newTestPeers(t, 2, peerTestCluster, "127.0.0.1:0", map[uint64]string{1: ""})
	addr := p2.Addr().String()
	old := rawDial(t, addr, rawPeerHello(peerTestCluster, 1, 2))
	readRawHello(t, old, rawPeerHello(peerTestCluster, 2, 1))
	waitPeer(t, 2*time.Second, "first connection live", func() bool { return p2.Reachable(1) })
	fresh := rawDial(t, addr, rawPeerHello(peerTestCluster, 1, 2))
	readRawHello(t, fresh, rawPeerHello(peerTestCluster, 2, 1))
	expectClosed(t, old)
	if !p2.Reachable(1) || p2.liveConns() != 1 {
		t.Fatal("the newer connection is not the live one")
	}
	st := p2.Stats()
	// Counted right after the swap that closed the old connection.
	waitPeer(t, time.Second, "a reconnect counted", func() bool { return st.Reconnects.Load() == 1 })
	if st.Accepts.Load() != 2 {
		t.Errorf("accepts %d, want 2", st.Accepts.Load())
	}

	// Node 2's messages for node 1 now go on the newer connection.
	want := Envelope{Partition: 6, Msg: peerTestMsg(2, 1, 9, 30)}
	p2.Send([]Envelope{want})
	envs := readRawMessages(t, fresh)
	if len(envs) != 1 || envs[0].Partition != want.Partition || !proto.Equal(envs[0].Msg, want.Msg) {
		t.Fatalf("received %v, want %v", envs, want)
	}
}

func TestPeerOversizeMessage(t *testing.T) {
	peerLeakCheck(t)
	ps, recs, _ := startPeerCluster(t, 2)
	huge := Envelope{Partition: 1, Msg: peerTestMsg(1, 2, 1, 0)}
	huge.Msg.Entries = []*raftpb.Entry{{Index: proto.Uint64(2), Data: make([]byte, peerFrameBytesMax)}}
	small := Envelope{Partition: 1, Msg: peerTestMsg(1, 2, 2, 10)}
	ps[1].Send([]Envelope{huge, small})
	waitPeer(t, 5*time.Second, "the small message arrives", func() bool { return recs[2].receivedTotal() == 1 })
	if got := recs[2].received(1)[0]; !proto.Equal(got.Msg, small.Msg) {
		t.Fatalf("received index %d, want the small message", got.Msg.GetIndex())
	}
	if d := recs[1].droppedFor(2); len(d) != 1 || d[0].Msg != huge.Msg {
		t.Fatalf("drops reported %d, want the huge message", len(d))
	}
	if !ps[1].Reachable(2) {
		t.Fatal("connection lost over an oversize message")
	}
}

func TestPeerListenBusy(t *testing.T) {
	peerLeakCheck(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ps, err := NewPeers(PeersConfig{
		NodeID: 1, Addrs: map[uint64]string{2: "127.0.0.1:1"}, Listen: ln.Addr().String(), ClusterID: 1,
		Deliver: func(uint64, []Envelope) {}, Dropped: func(uint64, Envelope) {}, Logger: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Stop()
	if err := ps.Listen(); err == nil {
		t.Fatal("Listen on a busy port succeeded")
	}
}

func TestPeerKeepalive(t *testing.T) {
	peerLeakCheck(t)
	p2, rec2 := newTestPeers(t, 2, peerTestCluster, "127.0.0.1:0", map[uint64]string{1: ""})
	c := rawDial(t, p2.Addr().String(), rawPeerHello(peerTestCluster, 1, 2))
	readRawHello(t, c, rawPeerHello(peerTestCluster, 2, 1))

	// With nothing to send, node 2 sends an empty frame within an interval.
	c.SetReadDeadline(time.Now().Add(peerKeepaliveInterval + 2*time.Second))
	got := make([]byte, len(rawKeepalive))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("no keepalive: %v", err)
	}
	if !bytes.Equal(got, rawKeepalive) {
		t.Fatalf("keepalive %x, want %x", got, rawKeepalive)
	}

	// A keepalive received is not delivered; the connection stays up.
	c.Write(append(rawKeepalive, rawPeerFrame(t, Envelope{Partition: 0, Msg: peerTestMsg(1, 2, 1, 10)})...))
	waitPeer(t, 2*time.Second, "the frame after the keepalive delivered", func() bool { return rec2.receivedTotal() == 1 })
	if n := rec2.deliverCalls(); n != 1 {
		t.Fatalf("%d Deliver calls, want 1", n)
	}
}
