package raftlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// testTick makes elections take about 100 ms, so that tests are quick.
const (
	testTick          = 10 * time.Millisecond
	testWait          = 10 * time.Second // bounds every wait of these tests
	testElectionTicks = 10
)

// listMachine is a Machine whose state is the list of records it applied,
// in order. Promoted, it applies what it submits at once (speculatively),
// as the engine does.
type listMachine struct {
	// pause is held by submit and, for the whole encoding, by Snapshot:
	// a live machine's snapshot must not include a submission that is
	// not yet applied (the engine's Pause does the same).
	pause    sync.Mutex
	mu       sync.Mutex
	records  []string
	index    uint64 // of the last entry Replay or Restore reflected
	journal  *Journal
	promoted chan struct{} // closed on each Promote; replaced by Reset
}

func newListMachine() *listMachine { return &listMachine{promoted: make(chan struct{})} }

func (m *listMachine) Replay(index uint64, records [][]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.journal != nil {
		return errors.New("Replay on a promoted machine")
	}
	for _, r := range records {
		m.records = append(m.records, string(r))
	}
	m.index = index
	return nil
}

func (m *listMachine) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records, m.index, m.journal = nil, 0, nil
	select {
	case <-m.promoted:
		m.promoted = make(chan struct{})
	default:
	}
}

func (m *listMachine) Restore(index uint64, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(data) > 0 {
		l, n := binary.Uvarint(data)
		if n <= 0 || l > uint64(len(data)-n) {
			return errors.New("bad snapshot")
		}
		m.records = append(m.records, string(data[n:n+int(l)]))
		data = data[n+int(l):]
	}
	m.index = index
	return nil
}

func (m *listMachine) Promote(j *Journal) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if j.Err() != nil {
		return
	}
	m.journal = j
	close(m.promoted)
}

func (m *listMachine) Snapshot(applied func() uint64) ([]byte, uint64, error) {
	m.pause.Lock()
	defer m.pause.Unlock()
	if ch := m.drain(); ch != nil {
		if err := <-ch; err != nil {
			return nil, 0, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	index := m.index
	if m.journal != nil {
		index = applied()
	}
	var data []byte
	for _, r := range m.records {
		data = binary.AppendUvarint(data, uint64(len(r)))
		data = append(data, r...)
	}
	return data, index, nil
}

// drain submits a read barrier on a live machine: once it is acknowledged,
// everything the machine submitted before is applied. (The engine pauses
// its actors as well; this machine submits only from tests, which do not
// snapshot concurrently with their own submissions' assertions.)
func (m *listMachine) drain() chan error {
	m.mu.Lock()
	j := m.journal
	m.mu.Unlock()
	if j == nil {
		return nil
	}
	ch := make(chan error, 1)
	j.Submit(nil, func(err error) { ch <- err })
	return ch
}

// submit applies rec speculatively and proposes it; the returned channel
// gets the outcome. ok is false when the machine is not promoted.
func (m *listMachine) submit(rec string) (<-chan error, bool) {
	m.pause.Lock()
	defer m.pause.Unlock()
	m.mu.Lock()
	j := m.journal
	if j == nil {
		m.mu.Unlock()
		return nil, false
	}
	m.records = append(m.records, rec)
	ch := make(chan error, 1)
	j.Submit([][]byte{[]byte(rec)}, func(err error) { ch <- err })
	m.mu.Unlock()
	return ch, true
}

func (m *listMachine) state() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.records...)
}

// network connects the nodes of one test in memory. A filter decides per
// message whether it is delivered; delivery is asynchronous, optionally
// delayed at random (which reorders messages).
type network struct {
	mu       sync.Mutex
	nodes    map[uint64]*Node
	cut      map[uint64]bool // isolated nodes: nothing to or from them
	dropRate float64
	delayMax time.Duration
	// drop, when set, loses the messages it returns true for.
	drop func(from uint64, m *raftpb.Message) bool
	rng  *rand.Rand
	wg   sync.WaitGroup
}

func newNetwork() *network {
	return &network{nodes: map[uint64]*Node{}, cut: map[uint64]bool{}, rng: rand.New(rand.NewPCG(1, 2))}
}

func (nw *network) send(from uint64, envs []Envelope) {
	for _, e := range envs {
		to := e.Msg.GetTo()
		nw.mu.Lock()
		dst := nw.nodes[to]
		lost := nw.cut[from] || nw.cut[to] || dst == nil || nw.rng.Float64() < nw.dropRate ||
			(nw.drop != nil && nw.drop(from, e.Msg))
		var delay time.Duration
		if nw.delayMax > 0 {
			delay = time.Duration(nw.rng.Int64N(int64(nw.delayMax)))
		}
		src := nw.nodes[from]
		nw.mu.Unlock()
		if lost {
			if src != nil {
				src.Dropped(to, e)
			}
			continue
		}
		// A copy: the receiver owns what it is handed, as after a real
		// transport's decoding.
		msg := proto.Clone(e.Msg).(*raftpb.Message)
		env := []Envelope{{Partition: e.Partition, Msg: msg}}
		if delay == 0 {
			dst.Deliver(from, env)
			continue
		}
		nw.wg.Add(1)
		time.AfterFunc(delay, func() {
			defer nw.wg.Done()
			dst.Deliver(from, env)
		})
	}
}

func (nw *network) isolate(id uint64, cut bool) {
	nw.mu.Lock()
	nw.cut[id] = cut
	nw.mu.Unlock()
}

// testCluster is a few Nodes on one in-memory network.
type testCluster struct {
	t        *testing.T
	nw       *network
	ids      []uint64
	parts    int
	dirs     map[uint64]string
	nodes    map[uint64]*Node
	machines map[uint64][]*listMachine
	snapN    uint64
}

func startCluster(t *testing.T, size, partitions int, snapshotEntries uint64) *testCluster {
	tc := &testCluster{t: t, nw: newNetwork(), parts: partitions, dirs: map[uint64]string{},
		nodes: map[uint64]*Node{}, machines: map[uint64][]*listMachine{}, snapN: snapshotEntries}
	for i := 1; i <= size; i++ {
		tc.ids = append(tc.ids, uint64(i))
	}
	for _, id := range tc.ids {
		tc.dirs[id] = t.TempDir()
		tc.start(id)
	}
	t.Cleanup(func() {
		for _, id := range tc.ids {
			if tc.nodes[id] != nil {
				tc.stop(id)
			}
		}
		tc.nw.wg.Wait()
	})
	return tc
}

func (tc *testCluster) start(id uint64) {
	ms := make([]*listMachine, tc.parts)
	for i := range ms {
		ms[i] = newListMachine()
	}
	n, err := Open(Config{NodeID: id, Nodes: tc.ids, Partitions: tc.parts, Dir: tc.dirs[id], NoSync: true,
		TickInterval: testTick, ElectionTicks: testElectionTicks, SnapshotEntries: tc.snapN, CompactKeepEntries: 10, DiskCompactRecords: 100,
		Send:    func(envs []Envelope) { tc.nw.send(id, envs) },
		Machine: func(p int) Machine { return ms[p] },
		Logger:  zerolog.Nop()})
	if err != nil {
		tc.t.Fatalf("node %d: Open: %v", id, err)
	}
	tc.nw.mu.Lock()
	tc.nw.nodes[id] = n
	tc.nw.mu.Unlock()
	tc.nodes[id], tc.machines[id] = n, ms
	n.Start()
}

func (tc *testCluster) stop(id uint64) {
	tc.nw.mu.Lock()
	delete(tc.nw.nodes, id)
	tc.nw.mu.Unlock()
	if err := tc.nodes[id].Stop(); err != nil {
		tc.t.Errorf("node %d: Stop: %v", id, err)
	}
	tc.nodes[id] = nil
}

// leader waits until some node other than those in except leads partition
// p and its machine is promoted, and returns that node's id.
func (tc *testCluster) leader(p int, except ...uint64) uint64 {
	tc.t.Helper()
	deadline := time.Now().Add(testWait)
	for time.Now().Before(deadline) {
		for _, id := range tc.ids {
			if tc.nodes[id] == nil || contains(except, id) {
				continue
			}
			m := tc.machines[id][p]
			m.mu.Lock()
			live := m.journal != nil
			m.mu.Unlock()
			if live {
				return id
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	tc.t.Fatalf("partition %d: no promoted leader within %v", p, testWait)
	return 0
}

func contains(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// submitOK submits recs through partition p's leader and waits for each to
// be acknowledged, retrying a record whose leader was deposed.
func (tc *testCluster) submitOK(p int, recs ...string) {
	tc.t.Helper()
	for _, r := range recs {
		deadline := time.Now().Add(testWait)
		for {
			if time.Now().After(deadline) {
				tc.t.Fatalf("partition %d: %q not acknowledged within %v", p, r, testWait)
			}
			ch, ok := tc.machines[tc.leader(p)][p].submit(r)
			if !ok {
				continue
			}
			if err := waitErr(ch); err == nil {
				break
			} else if !IsUnavailable(err) {
				tc.t.Fatalf("partition %d: %q: %v", p, r, err)
			}
		}
	}
}

func waitErr(ch <-chan error) error {
	select {
	case err := <-ch:
		return err
	case <-time.After(testWait):
		return fmt.Errorf("no answer within %v", testWait)
	}
}

// converged waits until every running node's machine of partition p holds
// want (nil: the same list as the others).
func (tc *testCluster) converged(p int, want []string) {
	tc.t.Helper()
	deadline := time.Now().Add(testWait)
	var last map[uint64][]string
	for time.Now().Before(deadline) {
		last = map[uint64][]string{}
		same := true
		var ref []string
		for _, id := range tc.ids {
			if tc.nodes[id] == nil {
				continue
			}
			s := tc.machines[id][p].state()
			last[id] = s
			if ref == nil {
				ref = s
				if want != nil {
					ref = want
				}
			}
			same = same && equalStrings(s, ref)
		}
		if same {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	tc.t.Fatalf("partition %d: replicas differ after %v: %s", p, testWait, describeStates(want, last))
}

// describeStates says briefly how the replicas' lists differ from want
// (or from each other).
func describeStates(want []string, states map[uint64][]string) string {
	var b bytes.Buffer
	if want != nil {
		fmt.Fprintf(&b, "want %d records ending %q; ", len(want), tail(want))
	}
	for id, s := range states {
		ref := want
		if ref == nil {
			ref = states[1]
		}
		i := 0
		for i < len(s) && i < len(ref) && s[i] == ref[i] {
			i++
		}
		fmt.Fprintf(&b, "node %d: %d records, first difference at %d, ending %q; ", id, len(s), i, tail(s))
	}
	return b.String()
}

func tail(s []string) []string { return s[max(0, len(s)-3):] }

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func records(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return out
}

func TestCommittedRecordsReachEveryReplicaInOrder(t *testing.T) {
	tc := startCluster(t, 3, 3, 0)
	for p := 0; p < 3; p++ {
		recs := records(fmt.Sprintf("p%d", p), 30)
		tc.submitOK(p, recs...)
		tc.converged(p, recs)
	}
}

func TestAcknowledgementMeansCommittedOnAMajority(t *testing.T) {
	tc := startCluster(t, 3, 1, 0)
	lead := tc.leader(0)
	var followers []uint64
	for _, id := range tc.ids {
		if id != lead {
			followers = append(followers, id)
		}
	}
	// With both followers cut off, nothing the leader proposes can commit:
	// no acknowledgement may come, and the callers learn that it is
	// unavailable.
	tc.nw.isolate(followers[0], true)
	tc.nw.isolate(followers[1], true)
	ch, ok := tc.machines[lead][0].submit("lonely")
	if !ok {
		t.Fatal("the leader's machine is not promoted")
	}
	select {
	case err := <-ch:
		if !IsUnavailable(err) {
			t.Fatalf("a submission without a majority answered %v, want ErrUnavailable", err)
		}
	case <-time.After(testWait):
		t.Fatalf("a submission without a majority was not failed within %v", testWait)
	}
}

func TestDeposedLeaderDropsUncommittedWork(t *testing.T) {
	tc := startCluster(t, 3, 1, 0)
	tc.submitOK(0, "a", "b")
	old := tc.leader(0)
	tc.nw.isolate(old, true)
	ch, ok := tc.machines[old][0].submit("uncommitted")
	if !ok {
		t.Fatal("the old leader's machine is not promoted")
	}
	newLead := tc.leader(0, old)
	tc.submitOK(0, "c")
	if err := waitErr(ch); !IsUnavailable(err) {
		t.Fatalf("the cut-off leader's submission answered %v, want ErrUnavailable", err)
	}
	tc.nw.isolate(old, false)
	tc.converged(0, []string{"a", "b", "c"})
	if got := tc.leader(0); got != newLead && got != old {
		t.Fatalf("leader %d is neither the new one nor the old one", got)
	}
}

func TestFollowerCatchesUpFromSnapshotAfterCompaction(t *testing.T) {
	tc := startCluster(t, 3, 1, 20)
	tc.submitOK(0, "first")
	lead := tc.leader(0)
	var lagger uint64
	for _, id := range tc.ids {
		if id != lead {
			lagger = id
			break
		}
	}
	tc.stop(lagger)
	recs := append([]string{"first"}, records("r", 150)...)
	// Enough entries that the leader's snapshots compact its in-memory log
	// past what the stopped node has.
	for i := 1; i < len(recs); i += 10 {
		tc.submitOK(0, recs[i:min(i+10, len(recs))]...)
	}
	waitFor(t, "the leader to compact past the stopped node", func() bool {
		first, _ := tc.nodes[tc.leader(0)].parts[0].ms.FirstIndex()
		return first > 10
	}, func() {
		tc.submitOK(0, "pad")
		recs = append(recs, "pad")
	})
	tc.start(lagger)
	tc.converged(0, recs)
	if tc.nodes[lagger].Stats().SnapshotsReceived.Load() == 0 {
		t.Fatal("the node caught up without a snapshot, so the test did not test snapshot install")
	}
}

func waitFor(t *testing.T, what string, cond func() bool, step func()) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", testWait, what)
		}
		if step != nil {
			step()
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func TestRestartRebuildsEveryPartitionFromDisk(t *testing.T) {
	tc := startCluster(t, 3, 2, 25)
	want := [2][]string{records("x", 400), records("y", 7)}
	tc.submitOK(0, want[0]...)
	tc.submitOK(1, want[1]...)
	tc.converged(0, want[0])
	tc.converged(1, want[1])
	compacted := 0
	for _, id := range tc.ids {
		if tc.nodes[id].wlog.FirstIndex() > 1 {
			compacted++
		}
		tc.stop(id)
	}
	if compacted == 0 {
		t.Fatal("no node cut the front of its log, so the restart did not test loading a compacted log")
	}
	for _, id := range tc.ids {
		tc.start(id)
	}
	tc.converged(0, want[0])
	tc.converged(1, want[1])
	tc.submitOK(0, "after")
	tc.converged(0, append(want[0], "after"))
}

func TestLostAndReorderedMessagesStillConverge(t *testing.T) {
	tc := startCluster(t, 3, 2, 40)
	tc.nw.mu.Lock()
	tc.nw.dropRate = 0.1
	tc.nw.delayMax = 15 * time.Millisecond
	tc.nw.mu.Unlock()
	var wg sync.WaitGroup
	for p := 0; p < 2; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 60; i++ {
				tc.submitOK(p, fmt.Sprintf("p%d-%02d", p, i))
			}
		}()
	}
	wg.Wait()
	for p := 0; p < 2; p++ {
		tc.converged(p, nil)
		s := tc.machines[tc.leader(p)][p].state()
		// Retries after a deposition may repeat a record that did commit
		// (its acknowledgement was lost), never lose or reorder one.
		next := 0
		for _, r := range s {
			want := fmt.Sprintf("p%d-%02d", p, next)
			if r == want {
				next++
				continue
			}
			if next == 0 || r != fmt.Sprintf("p%d-%02d", p, next-1) {
				t.Fatalf("partition %d: %q out of order in %q", p, r, s)
			}
		}
		if next != 60 {
			t.Fatalf("partition %d: %d of 60 records present: %q", p, next, s)
		}
	}
}

func TestFollowerReadBarrierSeesEverythingAcknowledged(t *testing.T) {
	tc := startCluster(t, 3, 1, 0)
	lead := tc.leader(0)
	for i := 0; i < 20; i++ {
		rec := fmt.Sprintf("w%02d", i)
		tc.submitOK(0, rec)
		for _, id := range tc.ids {
			if id == lead {
				continue
			}
			if err := tc.nodes[id].ReadBarrier(0); err != nil {
				t.Fatalf("node %d: ReadBarrier: %v", id, err)
			}
			if s := tc.machines[id][0].state(); len(s) == 0 || s[len(s)-1] != rec {
				t.Fatalf("node %d: after the read barrier the replica ends with %q, want %q", id, s, rec)
			}
		}
	}
}

func TestReadBarrierWithoutMajorityIsUnavailable(t *testing.T) {
	tc := startCluster(t, 3, 1, 0)
	tc.leader(0)
	tc.nw.isolate(3, true)
	start := time.Now()
	if err := tc.nodes[3].ReadBarrier(0); !IsUnavailable(err) {
		t.Fatalf("an isolated node's read barrier answered %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the read barrier took %v to give up", d)
	}
}

func TestEntryDataRoundTrip(t *testing.T) {
	data := appendEntryHeader(nil, entryBatch, 0xfeedface, 42)
	recs := [][]byte{[]byte("one"), {}, bytes.Repeat([]byte{7}, 300)}
	data = binary.AppendUvarint(data, uint64(len(recs)))
	for _, r := range recs {
		data = binary.AppendUvarint(data, uint64(len(r)))
		data = append(data, r...)
	}
	var ed entryData
	if err := decodeEntryData(data, &ed); err != nil {
		t.Fatal(err)
	}
	if ed.kind != entryBatch || ed.origin != 0xfeedface || ed.seq != 42 || len(ed.records) != 3 ||
		!bytes.Equal(ed.records[2], recs[2]) {
		t.Fatalf("decoded %+v", ed)
	}
	for cut := 0; cut < len(data); cut++ {
		if err := decodeEntryData(data[:cut], &ed); err == nil && cut < len(data) {
			t.Fatalf("a batch cut at %d of %d bytes decoded", cut, len(data))
		}
	}
}

// A HardState that moved only its commit index is not worth an fsync of
// its own (raft.MustSync): one record at a time, the leader fsyncs about
// once per record (its entry), not twice (the entry, then the commit). A
// restart of every node, whose newest commit index then never reached the
// disk, still brings every acknowledged record back.
func TestCommitIndexAloneCostsNoFsync(t *testing.T) {
	tc := startCluster(t, 3, 1, 0)
	lead := tc.leader(0)
	tc.submitOK(0, "warm-up")
	const n = 100
	before := tc.nodes[lead].Stats().Fsyncs.Load()
	want := append([]string{"warm-up"}, records("c", n)...)
	for _, r := range want[1:] {
		tc.submitOK(0, r)
	}
	fsyncs := tc.nodes[lead].Stats().Fsyncs.Load() - before
	if fsyncs > n+n/4 {
		t.Fatalf("the leader fsynced %d times for %d records submitted one at a time, want about one per record", fsyncs, n)
	}
	tc.converged(0, want)
	for _, id := range tc.ids {
		tc.stop(id)
	}
	for _, id := range tc.ids {
		tc.start(id)
	}
	tc.converged(0, want)
	tc.submitOK(0, "after")
	tc.converged(0, append(want, "after"))
}

// Concurrent readers share ReadIndex rounds, and the node's counters say
// how many: every caller is counted once, and a round answers all the
// callers that arrived while the one before it was out.
func TestConcurrentReadBarriersShareRounds(t *testing.T) {
	tc := startCluster(t, 3, 1, 0)
	lead := tc.leader(0)
	tc.submitOK(0, "r0")
	follower := tc.ids[0]
	if follower == lead {
		follower = tc.ids[1]
	}
	n := tc.nodes[follower]
	const readers, readsEach = 32, 20
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range readsEach {
				if err := n.ReadBarrier(0); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("ReadBarrier: %v", err)
	}
	barriers, rounds := n.Stats().ReadBarriers.Load(), n.Stats().ReadRounds.Load()
	if barriers != readers*readsEach {
		t.Fatalf("%d read barriers counted, want %d", barriers, readers*readsEach)
	}
	if rounds == 0 || rounds >= barriers {
		t.Fatalf("%d ReadIndex rounds for %d concurrent barriers: want at least one and fewer than one per barrier", rounds, barriers)
	}
	t.Logf("%d barriers in %d rounds", barriers, rounds)
}
