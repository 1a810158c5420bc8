package raftlog

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashsale/flashsale/wal"
	"github.com/rs/zerolog"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Limits and timing of a Node. The election timeout is ElectionTicks ×
// TickInterval (1 s by default); a leader cut off from its majority steps
// down after that long (CheckQuorum), failing what it had not committed.
const (
	partitionsMax             = 64
	defaultTickInterval       = 100 * time.Millisecond
	defaultElectionTicks      = 10
	defaultHeartbeatTicks     = 1
	defaultSnapshotEntries    = 10_000
	defaultCompactKeepEntries = 1_000
	// entryBytesMax bounds one proposal: submissions beyond it go into the
	// next entry of the same round.
	entryBytesMax = 1 << 20
	// uncommittedBytesMax bounds a leader's entries not yet committed;
	// beyond it raft drops proposals (the journal fails them: 503), which
	// is the back-pressure of a disk or a majority that cannot keep up.
	uncommittedBytesMax = 64 << 20
	// appendsInFlightMax is how many MsgApps with entries a leader sends a
	// follower before it waits for an acknowledgement (raft's
	// MaxInflightMsgs). Two keep one append on the wire while the follower
	// fsyncs the other, and everything proposed meanwhile waits to ride in
	// the next one, with the new commit index: far fewer, larger messages
	// than one per round (measured: 141–175 messages sent per 1,000 holds
	// against 509–666 with 256 in flight, and more holds per second). A
	// paused follower still gets the commit index as soon as an
	// acknowledgement frees a slot, and a lost append is resent after the
	// next heartbeat response, so the limit costs no liveness.
	appendsInFlightMax = 2
	// inboundBatchesMax bounds the received message batches waiting for the
	// loop; beyond it a batch is dropped, and Raft resends.
	inboundBatchesMax = 4096
	// proposalTimeout fails a leader's journal whose oldest submission has
	// waited that long: Raft dropped it, or the leadership is gone without
	// the loop seeing it yet. Its callers get 503 unavailable.
	proposalTimeout = 1500 * time.Millisecond
	// defaultReadTimeout bounds a read barrier: like proposalTimeout, well
	// within the 2 s in which a client must hear 503 without a leader.
	defaultReadTimeout = 1500 * time.Millisecond
	// rebalanceInterval is how often a node that leads more than its share
	// of partitions hands one over.
	rebalanceInterval = 3 * time.Second
)

// Machine is one partition's state machine (cmd wires it to an engine).
// Replay, Reset and Restore run on the Node's loop goroutine; Promote runs
// on a goroutine of its own; Snapshot on the snapshotter's.
type Machine interface {
	// Replay applies a committed entry's records to the replica; it is
	// called for every entry, also those without records (Raft's own, and
	// leadership barriers), so that the replica knows its applied index.
	Replay(index uint64, records [][]byte) error
	// Reset discards the partition's state, also a promoted one (its
	// Journal has already failed), and starts an empty replica.
	Reset()
	// Restore loads a snapshot's data into the empty replica Reset made.
	Restore(index uint64, data []byte) error
	// Promote hands the caught-up replica the Journal of this node's
	// leadership: the machine goes live and serves until it is Reset.
	Promote(j *Journal)
	// Snapshot encodes the state and returns it with the index of the
	// last entry it reflects; applied reads the partition's applied index
	// (for a live machine that has drained its journal).
	Snapshot(applied func() uint64) (data []byte, index uint64, err error)
}

// Config configures a Node.
type Config struct {
	NodeID     uint64
	Nodes      []uint64 // every node's id, this one's included
	Partitions int
	Dir        string // the node's Raft log (Dir/wal) and snapshots (Dir/snap/pNN)
	NoSync     bool   // --fsync=never

	TickInterval    time.Duration
	ElectionTicks   int
	HeartbeatTicks  int
	SnapshotEntries uint64 // applied entries between two snapshots of a partition
	// CompactKeepEntries is how many applied entries a partition keeps in
	// memory behind its snapshot, so that a follower a little behind gets
	// entries rather than a whole snapshot.
	CompactKeepEntries uint64
	// ReadTimeout bounds ReadBarrier's wait (default 1.5 s).
	ReadTimeout time.Duration
	// DiskCompactRecords is the node log's length from which its front,
	// once every partition has it in a snapshot, is cut.
	DiskCompactRecords uint64

	// FaultAckUncommitted breaks the one promise that matters, on
	// purpose, for the tests that show the checkers catch a broken node:
	// a leader's Journal acknowledges every submission at once and never
	// proposes it, so its answers live only in its memory.
	FaultAckUncommitted bool

	// CommitHook is the node log's wal.Options.CommitHook (fault
	// injection in tests of the binary; nil otherwise).
	CommitHook func(write func() error) error

	// Send hands messages to the peer transport; it must not block.
	Send func([]Envelope)
	// Machine returns partition p's state machine.
	Machine func(p int) Machine
	Logger  zerolog.Logger
}

// Node runs every partition's Raft group of this machine.
type Node struct {
	cfg   Config
	log   zerolog.Logger
	wlog  *wal.Log
	parts []*partition

	recvc   chan inbound
	kick    chan struct{}
	snapc   chan snapResult
	stop    chan struct{}
	stopped chan struct{}

	stats Stats

	failed  chan struct{} // closed when the loop stopped on an error
	failErr error         // set before failed is closed

	readSeq atomic.Uint64
	// directOut holds the loop's direct read requests and answers
	// (directread.go) until the round sends them.
	directOut []Envelope
	// heard is when a message of each peer last reached the loop; ticks
	// counts the loop's ticks. Both are the loop's.
	heard map[uint64]time.Time
	ticks uint64

	// Appends the wal has made durable, with the responses that waited for
	// them (see round); filled by the committer, drained by the loop.
	appendMu   sync.Mutex
	appendDone []Envelope
	appendErr  error
}

// Stats counts what a Node did; read with atomic loads.
type Stats struct {
	Rounds, Fsyncs, Proposals, EntriesApplied atomic.Uint64
	MessagesSent, MessagesDropped             atomic.Uint64
	SnapshotsSent, SnapshotsReceived          atomic.Uint64
	SnapshotsTaken, LeaderChanges             atomic.Uint64
	DiskCompactions                           atomic.Uint64
	// ReadBarriers counts ReadBarrier calls (ReadBarrierAll counts one
	// per partition); ReadRounds the ReadIndex requests sent for them.
	// Their ratio is how many reads share one round. ReadRoundsDirect
	// counts those of them answered without Raft's ReadIndex round
	// (directread.go): a leader's direct answer to a follower, or one
	// follower's confirmation of a leader.
	ReadBarriers, ReadRounds, ReadRoundsDirect atomic.Uint64
}

type inbound struct {
	envs    []Envelope
	dropped *Envelope // a message the transport could not send
	to      uint64
}

type snapResult struct {
	p     *partition
	index uint64
	data  []byte
	err   error
}

// partition is one Raft group on this node. Fields without a comment are
// the loop's.
type partition struct {
	id        uint32
	rn        *raft.RawNode
	ms        *raft.MemoryStorage
	m         Machine
	confState *raftpb.ConfState
	snapDir   string

	applied   atomic.Uint64
	committed atomic.Uint64
	proposals uint64 // the loop's: entries proposed since the last rebalance
	lead      atomic.Uint64
	term      atomic.Uint64

	snapIndex    uint64 // index of the newest snapshot
	snapshotting bool
	snapMu       sync.Mutex // serialises the saves of the partition's snapshot files
	// snapKept is the index of the newest snapshot on disk (0: none).
	snapKept  atomic.Uint64
	hardState *raftpb.HardState
	// hardStateUnsaved: hardState differs from the newest HardState record
	// on disk in its commit index only (see storeAppend).
	hardStateUnsaved bool
	marks            []diskMark // where the entries after snapKept lie in the wal
	journal          *Journal   // this node leads (or is becoming the leader of) the partition
	lastLead         uint64

	// ReadBarrier callers wait in groups: every caller that arrives before
	// the loop asks the leader joins readNext, and one ReadIndex request
	// answers them all.
	readMu    sync.Mutex
	readNext  *readGroup            // joined by new callers; not asked yet
	readAsked map[uint64]*readGroup // asked; the index is not known yet
	readKnown []*readGroup          // the index is known; waiting for applied
	// confirming holds the loop's read barriers waiting for a follower's
	// confirmation of this node's leadership, by request id.
	confirming map[uint64]confirmAsk
}

type readGroup struct {
	waiters int           // readMu's: callers that joined
	done    chan struct{} // closed once err is set
	err     error         // nil: applied reached index
	index   uint64
	asked   time.Time
}

func newReadGroup() *readGroup { return &readGroup{done: make(chan struct{})} }

func (g *readGroup) finish(err error) {
	g.err = err
	close(g.done)
}

// Open loads the node's log and snapshots and builds every partition's
// replica from them. Call Start to run.
func Open(cfg Config) (*Node, error) {
	if cfg.Partitions < 1 || cfg.Partitions > partitionsMax {
		return nil, fmt.Errorf("raftlog: %d partitions, want 1 to %d", cfg.Partitions, partitionsMax)
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = defaultTickInterval
	}
	if cfg.ElectionTicks <= 0 {
		cfg.ElectionTicks = defaultElectionTicks
	}
	if cfg.HeartbeatTicks <= 0 {
		cfg.HeartbeatTicks = defaultHeartbeatTicks
	}
	if cfg.SnapshotEntries == 0 {
		cfg.SnapshotEntries = defaultSnapshotEntries
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = defaultReadTimeout
	}
	if cfg.DiskCompactRecords == 0 {
		cfg.DiskCompactRecords = defaultDiskCompactRecords
	}
	if cfg.CompactKeepEntries == 0 {
		cfg.CompactKeepEntries = defaultCompactKeepEntries
	}
	wlog, err := wal.Open(walDir(cfg.Dir), wal.Options{NoSync: cfg.NoSync, CommitHook: cfg.CommitHook})
	if err != nil {
		return nil, err
	}
	disk, err := loadDisk(cfg.Dir, cfg.Partitions, wlog)
	if err != nil {
		_ = wlog.Close()
		return nil, err
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger, wlog: wlog,
		recvc: make(chan inbound, inboundBatchesMax), kick: make(chan struct{}, 1),
		snapc: make(chan snapResult, cfg.Partitions), stop: make(chan struct{}), stopped: make(chan struct{}),
		failed: make(chan struct{}), heard: map[uint64]time.Time{},
	}
	for i := 0; i < cfg.Partitions; i++ {
		p, err := n.openPartition(uint32(i), &disk[i])
		if err != nil {
			_ = wlog.Close()
			return nil, err
		}
		n.parts = append(n.parts, p)
	}
	return n, nil
}

func (n *Node) openPartition(id uint32, d *diskPartition) (*partition, error) {
	p := &partition{id: id, ms: raft.NewMemoryStorage(), m: n.cfg.Machine(int(id)), snapDir: snapDir(n.cfg.Dir, id),
		readAsked: map[uint64]*readGroup{}, readNext: newReadGroup()}
	p.m.Reset()
	fresh := d.snap == nil && d.hard == nil && len(d.ents) == 0
	if d.snap != nil {
		if err := p.ms.ApplySnapshot(d.snap); err != nil {
			return nil, fmt.Errorf("raftlog: partition %d: %w", id, err)
		}
		if err := p.m.Restore(d.snap.GetMetadata().GetIndex(), d.snap.GetData()); err != nil {
			return nil, fmt.Errorf("raftlog: partition %d: restoring its snapshot: %w", id, err)
		}
		p.snapIndex = d.snap.GetMetadata().GetIndex()
		p.confState = d.snap.GetMetadata().GetConfState()
		p.applied.Store(p.snapIndex)
	}
	if d.hard != nil {
		if err := p.ms.SetHardState(d.hard); err != nil {
			return nil, err
		}
		p.hardState = d.hard
		p.committed.Store(d.hard.GetCommit())
	}
	p.marks = d.marks
	if len(d.ents) > 0 {
		if err := p.ms.Append(d.ents); err != nil {
			return nil, fmt.Errorf("raftlog: partition %d: %w", id, err)
		}
	}
	rc := &raft.Config{
		ID: n.cfg.NodeID, ElectionTick: n.cfg.ElectionTicks, HeartbeatTick: n.cfg.HeartbeatTicks,
		Storage: p.ms, Applied: p.applied.Load(),
		MaxSizePerMsg: entryBytesMax, MaxInflightMsgs: appendsInFlightMax, MaxUncommittedEntriesSize: uncommittedBytesMax,
		AsyncStorageWrites: true,
		CheckQuorum:        true, PreVote: true, ReadOnlyOption: raft.ReadOnlySafe,
		Logger: raftLogger{n.log.With().Uint32("partition", id).Logger()},
	}
	rn, err := raft.NewRawNode(rc)
	if err != nil {
		return nil, err
	}
	if fresh {
		peers := make([]raft.Peer, len(n.cfg.Nodes))
		for i, id := range n.cfg.Nodes {
			peers[i] = raft.Peer{ID: id}
		}
		if err := rn.Bootstrap(peers); err != nil {
			return nil, err
		}
	}
	p.rn = rn
	return p, nil
}

// Start runs the loop.
func (n *Node) Start() {
	n.wlog.Start()
	go n.run()
}

// Stop ends the loop, fails what the leaders had not committed, and closes
// the log.
func (n *Node) Stop() error {
	close(n.stop)
	<-n.stopped
	for _, p := range n.parts {
		if p.journal != nil {
			p.journal.fail(ErrUnavailable)
		}
	}
	return n.wlog.Close()
}

// Deliver hands messages received from a peer to the loop; it never blocks
// (a full inbox drops the batch: Raft resends).
func (n *Node) Deliver(from uint64, envs []Envelope) {
	select {
	case n.recvc <- inbound{envs: envs}:
	default:
		n.stats.MessagesDropped.Add(uint64(len(envs)))
	}
}

// Dropped tells the loop that the transport could not send e to peer to.
func (n *Node) Dropped(to uint64, e Envelope) {
	n.stats.MessagesDropped.Add(1)
	env := e
	select {
	case n.recvc <- inbound{dropped: &env, to: to}:
	default:
	}
}

func (n *Node) notify() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// Failed is closed once the node stopped serving on an error (its log
// failed, or a committed entry did not apply); Err says why. Nothing is
// acknowledged after it: the process should stop.
func (n *Node) Failed() <-chan struct{} { return n.failed }

// Err is the error that closed Failed, or nil.
func (n *Node) Err() error {
	select {
	case <-n.failed:
		return n.failErr
	default:
		return nil
	}
}

// CommitStalled reports whether the node's log has been writing one batch
// for longer than d: a hung disk.
func (n *Node) CommitStalled(d time.Duration) bool { return n.wlog.CommitStalled(d) }

// Stats returns the node's counters.
func (n *Node) Stats() *Stats { return &n.stats }

// FsyncLatency is the histogram of the node's disk writes: one write and
// fsync of its log per round, every partition's records together.
func (n *Node) FsyncLatency() wal.Latency { return n.wlog.FsyncLatency() }

// PartitionStatus is what GET /cluster shows of one partition.
type PartitionStatus struct {
	ID                   int
	Leader, Term         uint64
	CommitIndex, Applied uint64
}

// Status returns partition p's figures as last seen by the loop.
func (n *Node) Status(p int) PartitionStatus {
	pt := n.parts[p]
	return PartitionStatus{ID: p, Leader: pt.lead.Load(), Term: pt.term.Load(),
		CommitIndex: pt.committed.Load(), Applied: pt.applied.Load()}
}

// Leader returns the id of partition p's leader as this node knows it (0:
// none known).
func (n *Node) Leader(p int) uint64 { return n.parts[p].lead.Load() }

// Partitions is the partition count.
func (n *Node) Partitions() int { return len(n.parts) }

// ReadBarrier waits until partition p's replica here reflects everything
// committed before the call (a ReadIndex round with the leader, then the
// apply of up to that index), so that a read after it is linearizable. It
// returns ErrUnavailable when that does not happen within the node's
// readTimeout (no leader, no majority). Concurrent callers share one
// ReadIndex request.
func (n *Node) ReadBarrier(p int) error {
	n.stats.ReadBarriers.Add(1)
	pt := n.parts[p]
	pt.readMu.Lock()
	g := pt.readNext
	g.waiters++
	first := g.waiters == 1
	pt.readMu.Unlock()
	if first {
		n.notify() // the group's later callers ride on this wake-up
	}
	select {
	case <-g.done:
		return g.err
	case <-n.stop:
		return ErrUnavailable
	}
}

// ReadBarrierAll is ReadBarrier for every partition at once.
func (n *Node) ReadBarrierAll() error {
	n.stats.ReadBarriers.Add(uint64(len(n.parts)))
	groups := make([]*readGroup, len(n.parts))
	for i, pt := range n.parts {
		pt.readMu.Lock()
		groups[i] = pt.readNext
		groups[i].waiters++
		pt.readMu.Unlock()
	}
	n.notify()
	for _, g := range groups {
		select {
		case <-g.done:
			if g.err != nil {
				return g.err
			}
		case <-n.stop:
			return ErrUnavailable
		}
	}
	return nil
}

func (n *Node) run() {
	defer close(n.stopped)
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	rebalance := time.NewTicker(rebalanceInterval)
	defer rebalance.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-ticker.C:
			n.ticks++
			for _, p := range n.parts {
				p.rn.Tick()
			}
			n.retryConfirmations()
			n.checkStuck()
			n.expireReads(time.Now())
		case <-rebalance.C:
			n.rebalance()
		case in := <-n.recvc:
			n.step(in)
		case <-n.kick:
		case r := <-n.snapc:
			n.snapshotDone(r)
		}
		for i := 0; i < inboundBatchesMax; i++ {
			select {
			case in := <-n.recvc:
				n.step(in)
				continue
			default:
			}
			break
		}
		err := n.deliverAppended()
		if err == nil {
			err = n.round()
		}
		if err != nil {
			n.failErr = err
			close(n.failed)
			n.log.Error().Err(err).Msg("raft log failed; the node stops serving")
			for _, p := range n.parts {
				if p.journal != nil {
					p.journal.fail(ErrUnavailable)
					p.journal = nil
				}
			}
			<-n.stop
			return
		}
	}
}

func (n *Node) step(in inbound) {
	if in.dropped != nil {
		if int(in.dropped.Partition) >= len(n.parts) {
			return
		}
		if isDirectRead(in.dropped.Msg) || isConfirm(in.dropped.Msg) {
			// Not Raft's: a lost confirmation is asked again after two
			// ticks, a lost direct read times out as a lost ReadIndex does.
			return
		}
		p := n.parts[in.dropped.Partition]
		p.rn.ReportUnreachable(in.to)
		if in.dropped.Msg.GetType() == raftpb.MessageType_MsgSnap {
			p.rn.ReportSnapshot(in.to, raft.SnapshotFailure)
		}
		return
	}
	if len(in.envs) > 0 && in.envs[0].Msg != nil {
		n.heard[in.envs[0].Msg.GetFrom()] = time.Now()
	}
	for _, e := range in.envs {
		if int(e.Partition) >= len(n.parts) || e.Msg == nil {
			continue
		}
		if e.Msg.GetType() == raftpb.MessageType_MsgSnap {
			n.stats.SnapshotsReceived.Add(1)
		}
		p := n.parts[e.Partition]
		if n.stepMarkedRead(p, e.Msg) {
			continue
		}
		// An error here is a message for a stale term or a peer Raft does
		// not know: Raft's own business to ignore.
		_ = p.rn.Step(e.Msg)
	}
}

// round proposes what waits and handles every partition's Ready, with
// raft's asynchronous storage writes: the log appends of all partitions go
// to the node's wal in one submission, which its committer batches with
// the submissions still queued behind an fsync in progress, and the loop
// goes on without waiting. What Raft says must wait for the append (a
// follower's acknowledgement, a vote, the leader's own acknowledgement of
// its entries) is delivered when the fsync returns (appended). Messages
// to peers that need nothing durable go at once; committed entries are
// applied at once (they are durable on a majority already).
func (n *Node) round() error {
	for _, p := range n.parts {
		n.propose(p)
	}
	var recs [][]byte
	var after []Envelope // responses due once recs are durable
	var out []Envelope
	walFirst := n.wlog.LastIndex() + 1
	touched := false
	for _, p := range n.parts {
		if !p.rn.HasReady() {
			continue
		}
		touched = true
		rd := p.rn.Ready()
		var applies []*raftpb.Message
		for _, m := range rd.Messages {
			switch m.GetTo() {
			case raft.LocalAppendThread:
				var err error
				if recs, err = n.storeAppend(p, m, recs, walFirst); err != nil {
					return err
				}
				for _, r := range m.GetResponses() {
					after = append(after, Envelope{Partition: p.id, Msg: r})
				}
			case raft.LocalApplyThread:
				applies = append(applies, m)
			default:
				if m.GetType() == raftpb.MessageType_MsgSnap {
					n.stats.SnapshotsSent.Add(1)
				}
				out = append(out, Envelope{Partition: p.id, Msg: m})
			}
		}
		for _, m := range applies {
			if err := n.apply(p, m.GetEntries()); err != nil {
				return err
			}
			for _, r := range m.GetResponses() {
				_ = p.rn.Step(r)
			}
		}
		for _, rs := range rd.ReadStates {
			n.readReturned(p, rs, false)
		}
		if rd.SoftState != nil {
			n.softState(p, rd.SoftState)
		}
	}
	out = append(out, n.takeDirectOut()...)
	if !touched {
		// A direct read's answer changes nothing Raft knows.
		n.sendEnvelopes(out)
		for _, p := range n.parts {
			n.completeReads(p)
		}
		return nil
	}
	n.stats.Rounds.Add(1)
	n.sendEnvelopes(out)
	if len(recs) > 0 {
		var err error
		if recs, err = n.saveHardStates(recs); err != nil {
			return err
		}
	}
	if len(recs) > 0 || len(after) > 0 {
		withRecords := len(recs) > 0
		n.wlog.Submit(recs, func(err error) { n.appended(after, withRecords, err) })
	}
	for _, p := range n.parts {
		n.watchLeadership(p)
		n.completeReads(p)
		n.maybeSnapshot(p, false)
	}
	return nil
}

// storeAppend turns a MsgStorageAppend of p into disk records (entries,
// then the HardState it carries), saves its snapshot, and fills raft's
// MemoryStorage, the in-memory image of the log (raft reads its own
// unstable entries until it hears they are durable, so filling it before
// the fsync is safe).
func (n *Node) storeAppend(p *partition, m *raftpb.Message, recs [][]byte, walFirst uint64) ([][]byte, error) {
	snap := m.GetSnapshot()
	hasSnap := snap != nil && !raft.IsEmptySnap(snap)
	if hasSnap {
		if err := p.saveSnapshot(snap); err != nil {
			return recs, err
		}
		if err := p.ms.ApplySnapshot(snap); err != nil {
			return recs, err
		}
		if err := n.installSnapshot(p, snap); err != nil {
			return recs, err
		}
	}
	ents := m.GetEntries()
	if k := len(ents); k > 0 {
		p.marks = append(p.marks, diskMark{raftLast: ents[k-1].GetIndex(), walFirst: walFirst})
		for _, e := range ents {
			b, err := appendDiskRecord(nil, diskEntry, p.id, e)
			if err != nil {
				return recs, err
			}
			recs = append(recs, b)
		}
		if err := p.ms.Append(ents); err != nil {
			return recs, err
		}
	}
	if m.Term != nil || m.Vote != nil || m.Commit != nil {
		hs := &raftpb.HardState{Term: proto.Uint64(m.GetTerm()), Vote: proto.Uint64(m.GetVote()), Commit: proto.Uint64(m.GetCommit())}
		if err := p.ms.SetHardState(hs); err != nil {
			return recs, err
		}
		prev := p.hardState
		p.hardState = hs
		p.committed.Store(hs.GetCommit())
		// Only the commit index moved: nothing raft relies on needs the
		// disk (raft.MustSync is false), since a restart re-learns the
		// commit index from the leader and loadDisk raises it to the
		// snapshot. Its record rides with the next records this node
		// writes (saveHardStates) instead of costing an fsync of its own,
		// which would queue every later append behind it.
		commitOnly := len(ents) == 0 && !hasSnap && prev != nil &&
			hs.GetTerm() == prev.GetTerm() && hs.GetVote() == prev.GetVote()
		if commitOnly {
			p.hardStateUnsaved = true
			return recs, nil
		}
		b, err := appendDiskRecord(nil, diskHardState, p.id, hs)
		if err != nil {
			return recs, err
		}
		recs = append(recs, b)
		p.hardStateUnsaved = false
	}
	return recs, nil
}

// saveHardStates adds the record of every HardState that storeAppend left
// unsaved to recs, a round's records that are going to the disk anyway.
func (n *Node) saveHardStates(recs [][]byte) ([][]byte, error) {
	for _, p := range n.parts {
		if !p.hardStateUnsaved {
			continue
		}
		b, err := appendDiskRecord(nil, diskHardState, p.id, p.hardState)
		if err != nil {
			return recs, err
		}
		recs = append(recs, b)
		p.hardStateUnsaved = false
	}
	return recs, nil
}

// appended runs on the wal's committer once a round's records are durable
// (or could not be): it hands the responses that waited for them to the
// loop. It must not block.
//
// The responses to peers (a follower's acknowledgement, a vote) go to the
// transport from here, at once: waking the loop only to hand them on would
// add a goroutine hop to every commit's critical path. Those for this
// node's own raft wait for the loop, which alone may step it. Raft copes
// with any order between messages to a peer; the transport keeps these in
// the order the committer makes them durable.
func (n *Node) appended(resps []Envelope, withRecords bool, err error) {
	var peers []Envelope
	if err == nil {
		self := resps[:0:0]
		for _, e := range resps {
			if e.Msg.GetTo() == n.cfg.NodeID {
				self = append(self, e)
			} else {
				peers = append(peers, e)
			}
		}
		resps = self
	}
	if len(peers) > 0 {
		n.stats.MessagesSent.Add(uint64(len(peers)))
		n.cfg.Send(peers)
	}
	n.appendMu.Lock()
	if err != nil && n.appendErr == nil {
		n.appendErr = err
	}
	n.appendDone = append(n.appendDone, resps...)
	n.appendMu.Unlock()
	if err == nil && withRecords {
		n.stats.Fsyncs.Add(1)
	}
	n.notify()
}

// deliverAppended steps the responses to this node's raft whose appends
// are durable, in the order raft produced them (appended sent the others).
func (n *Node) deliverAppended() error {
	n.appendMu.Lock()
	resps, err := n.appendDone, n.appendErr
	n.appendDone = nil
	n.appendMu.Unlock()
	if err != nil {
		return err
	}
	for _, e := range resps {
		// An error is a response for a term that is over: raft's to ignore.
		_ = n.parts[e.Partition].rn.Step(e.Msg)
	}
	return nil
}

// sendEnvelopes hands messages to the transport, in one call.
func (n *Node) sendEnvelopes(out []Envelope) {
	if len(out) == 0 {
		return
	}
	n.stats.MessagesSent.Add(uint64(len(out)))
	n.cfg.Send(out)
	for _, e := range out {
		if e.Msg.GetType() == raftpb.MessageType_MsgSnap {
			// The transport reports a snapshot it could not send as
			// dropped; one it handed to the peer is taken as delivered.
			n.parts[e.Partition].rn.ReportSnapshot(e.Msg.GetTo(), raft.SnapshotFinish)
		}
	}
}

// propose turns the partition's waiting submissions into entries and read
// requests, and starts a leadership term's barrier.
func (n *Node) propose(p *partition) {
	st := p.rn.BasicStatus()
	if p.journal == nil && st.RaftState == raft.StateLeader {
		n.startTerm(p, st.GetTerm())
	}
	n.askReads(p)
	j := p.journal
	if j == nil || !j.promoted {
		return
	}
	subs := j.takeWaiting()
	for len(subs) > 0 {
		// One entry for the leading submissions that carry records (up to
		// entryBytesMax), or one read request for the leading empty ones.
		if len(subs[0].records) == 0 {
			k := 0
			for k < len(subs) && len(subs[k].records) == 0 {
				k++
			}
			f := &inflight{readID: n.readSeq.Add(1)}
			for _, s := range subs[:k] {
				f.dones = append(f.dones, s.done)
			}
			j.track(f)
			n.readIndex(p, readCtx(p.id, f.readID))
			subs = subs[k:]
			continue
		}
		j.seqNext++
		f := &inflight{seq: j.seqNext}
		data := appendEntryHeader(make([]byte, 0, entryHeaderBytesMax+256), entryBatch, j.nonce, f.seq)
		var recs [][]byte
		k := 0
		size := 0
		for k < len(subs) && len(subs[k].records) > 0 && (k == 0 || size < entryBytesMax) {
			for _, r := range subs[k].records {
				recs = append(recs, r)
				size += len(r)
			}
			f.dones = append(f.dones, subs[k].done)
			k++
		}
		data = binary.AppendUvarint(data, uint64(len(recs)))
		for _, r := range recs {
			data = binary.AppendUvarint(data, uint64(len(r)))
			data = append(data, r...)
		}
		j.track(f)
		if err := p.rn.Propose(data); err != nil {
			n.log.Warn().Err(err).Uint32("partition", p.id).Msg("proposal dropped; the partition's state is rebuilt before it serves again")
			n.depose(p)
			return
		}
		n.stats.Proposals.Add(1)
		p.proposals++
		subs = subs[k:]
	}
}

// startTerm begins this node's leadership of p: a barrier entry, whose
// apply means the replica holds everything committed before this term.
func (n *Node) startTerm(p *partition, term uint64) {
	var b [8]byte
	if _, err := crand.Read(b[:]); err != nil {
		panic("raftlog: no system randomness: " + err.Error())
	}
	j := &Journal{node: n, p: p, nonce: binary.LittleEndian.Uint64(b[:]), term: term}
	if err := p.rn.Propose(appendEntryHeader(nil, entryBarrier, j.nonce, 0)); err != nil {
		return // tried again next round
	}
	p.journal = j
}

// watchLeadership deposes the partition's journal once this node no longer
// leads it in the journal's term.
func (n *Node) watchLeadership(p *partition) {
	st := p.rn.BasicStatus()
	p.term.Store(st.GetTerm())
	p.lead.Store(st.Lead)
	if j := p.journal; j != nil && (st.RaftState != raft.StateLeader || st.GetTerm() != j.term) {
		n.depose(p)
	}
}

// depose fails the partition's journal and, if its machine was promoted,
// rebuilds the replica from the committed log: the live state may hold
// work that was never committed.
func (n *Node) depose(p *partition) {
	j := p.journal
	if j == nil {
		return
	}
	p.journal = nil
	j.fail(ErrUnavailable)
	if !j.promoted {
		return
	}
	n.log.Warn().Uint32("partition", p.id).Uint64("term", j.term).Msg("lost the leadership: rebuilding the partition from the committed log")
	if err := n.rebuild(p); err != nil {
		panic(fmt.Sprintf("raftlog: rebuilding partition %d: %v", p.id, err))
	}
}

// rebuild replaces p's state with its snapshot plus the committed entries
// applied so far.
func (n *Node) rebuild(p *partition) error {
	p.m.Reset()
	snap, err := p.ms.Snapshot()
	if err != nil {
		return err
	}
	from := uint64(1)
	if idx := snap.GetMetadata().GetIndex(); idx > 0 {
		if err := p.m.Restore(idx, snap.GetData()); err != nil {
			return err
		}
		from = idx + 1
	}
	applied := p.applied.Load()
	if applied < from {
		return nil
	}
	ents, err := p.ms.Entries(from, applied+1, 1<<62)
	if err != nil {
		return err
	}
	var ed entryData
	for _, e := range ents {
		var records [][]byte
		if e.GetType() == raftpb.EntryType_EntryNormal && len(e.GetData()) > 0 {
			if err := decodeEntryData(e.GetData(), &ed); err != nil {
				return err
			}
			if ed.kind == entryBatch {
				records = ed.records
			}
		}
		if err := p.m.Replay(e.GetIndex(), records); err != nil {
			return err
		}
	}
	return nil
}

// apply applies committed entries. A live (promoted) machine has applied
// its own entries already, speculatively: they only acknowledge. Any other
// entry reaching a live machine means that another node leads now, so the
// machine is rebuilt from the committed log first. A replica gets every
// entry through Replay, records or not, so that it knows its applied index.
func (n *Node) apply(p *partition, ents []*raftpb.Entry) error {
	var ed entryData
	for _, e := range ents {
		idx := e.GetIndex()
		ed.kind, ed.records = 0, ed.records[:0]
		switch e.GetType() {
		case raftpb.EntryType_EntryConfChange:
			var cc raftpb.ConfChange
			if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
				return err
			}
			p.confState = p.rn.ApplyConfChange(&cc)
		case raftpb.EntryType_EntryConfChangeV2:
			return errors.New("raftlog: membership changes are not supported")
		default:
			if len(e.GetData()) > 0 {
				if err := decodeEntryData(e.GetData(), &ed); err != nil {
					return fmt.Errorf("partition %d entry %d: %w", p.id, idx, err)
				}
			}
		}
		n.stats.EntriesApplied.Add(1)
		j := p.journal
		if j != nil && j.promoted {
			if ed.kind != 0 && ed.origin == j.nonce {
				p.applied.Store(idx)
				if ed.kind == entryBatch {
					j.advance(ed.seq, idx)
				}
				continue
			}
			// Another leader's entry (or empty entry): this node's
			// leadership is over, whatever the loop has seen so far.
			n.depose(p)
			j = nil
		}
		var records [][]byte
		if ed.kind == entryBatch {
			records = ed.records
		}
		if err := p.m.Replay(idx, records); err != nil {
			return fmt.Errorf("partition %d entry %d: %w", p.id, idx, err)
		}
		p.applied.Store(idx)
		if ed.kind == entryBarrier && j != nil && ed.origin == j.nonce {
			j.mu.Lock()
			j.promoted = true
			j.mu.Unlock()
			n.stats.LeaderChanges.Add(1)
			go p.m.Promote(j)
		}
	}
	if j := p.journal; j != nil && j.promoted {
		j.advance(0, p.applied.Load())
	}
	return nil
}

func (n *Node) installSnapshot(p *partition, snap *raftpb.Snapshot) error {
	if j := p.journal; j != nil {
		p.journal = nil
		j.fail(ErrUnavailable)
	}
	p.m.Reset()
	idx := snap.GetMetadata().GetIndex()
	if err := p.m.Restore(idx, snap.GetData()); err != nil {
		return err
	}
	p.snapIndex = idx
	p.confState = snap.GetMetadata().GetConfState()
	p.applied.Store(idx)
	n.log.Info().Uint32("partition", p.id).Uint64("index", idx).Msg("installed a snapshot from the leader")
	return nil
}

func (n *Node) softState(p *partition, ss *raft.SoftState) {
	if ss.Lead != p.lastLead {
		p.lastLead = ss.Lead
		n.log.Info().Uint32("partition", p.id).Uint64("leader", ss.Lead).Str("state", ss.RaftState.String()).Msg("partition leader changed")
	}
}

func readCtx(partition uint32, id uint64) []byte {
	b := binary.LittleEndian.AppendUint32(nil, partition)
	return binary.LittleEndian.AppendUint64(b, id)
}

// readID is the request id in a context readCtx made; ok false for any
// other bytes.
func readID(ctx []byte) (id uint64, ok bool) {
	if len(ctx) != 12 {
		return 0, false
	}
	return binary.LittleEndian.Uint64(ctx[4:]), true
}

// askReads sends one ReadIndex request for the ReadBarrier callers that
// arrived since the last round.
func (n *Node) askReads(p *partition) {
	p.readMu.Lock()
	g := p.readNext
	if g.waiters == 0 || len(p.readAsked) >= readGroupsAskedMax {
		p.readMu.Unlock()
		return // the leader is slow to answer: let callers gather
	}
	p.readNext = newReadGroup()
	id := n.readSeq.Add(1)
	g.asked = time.Now()
	p.readAsked[id] = g
	p.readMu.Unlock()
	n.stats.ReadRounds.Add(1)
	n.readIndex(p, readCtx(p.id, id))
}

// readGroupsAskedMax bounds the ReadIndex requests of one partition in
// flight. One: readers that arrive while a request is out wait for the
// next, which then answers all of them. Followers' reads through 64
// connections went from 13k to 30k/s on this machine when this was 64
// (one request, and one heartbeat round of the leader, per read).
const readGroupsAskedMax = 1

// readReturned takes the index a read request of p must wait for, from
// Raft's ReadState or, direct, from directread.go's shorter rounds.
func (n *Node) readReturned(p *partition, rs raft.ReadState, direct bool) {
	id, ok := readID(rs.RequestCtx)
	if !ok {
		return
	}
	if j := p.journal; j != nil && j.readReturned(id, rs.Index) {
		return
	}
	p.readMu.Lock()
	if g := p.readAsked[id]; g != nil {
		if direct {
			n.stats.ReadRoundsDirect.Add(1)
		}
		delete(p.readAsked, id)
		g.index = rs.Index
		p.readKnown = append(p.readKnown, g)
	}
	next := p.readNext.waiters > 0
	p.readMu.Unlock()
	if next {
		n.notify() // the next group may be asked now
	}
}

// completeReads releases the ReadBarrier callers whose index is applied.
func (n *Node) completeReads(p *partition) {
	applied := p.applied.Load()
	p.readMu.Lock()
	kept := p.readKnown[:0]
	for _, g := range p.readKnown {
		if g.index <= applied {
			g.finish(nil)
		} else {
			kept = append(kept, g)
		}
	}
	p.readKnown = kept
	p.readMu.Unlock()
	if j := p.journal; j != nil && j.promoted {
		j.advance(0, applied)
	}
}

// expireReads fails the read groups asked longer than readTimeout ago: the
// leader did not answer (there is none, or it lost its majority), or this
// node did not apply up to the index in time.
func (n *Node) expireReads(now time.Time) {
	for _, p := range n.parts {
		p.readMu.Lock()
		for id, g := range p.readAsked {
			if now.Sub(g.asked) > n.cfg.ReadTimeout {
				delete(p.readAsked, id)
				g.finish(ErrUnavailable)
			}
		}
		kept := p.readKnown[:0]
		for _, g := range p.readKnown {
			if now.Sub(g.asked) > n.cfg.ReadTimeout {
				g.finish(ErrUnavailable)
			} else {
				kept = append(kept, g)
			}
		}
		p.readKnown = kept
		p.readMu.Unlock()
	}
}

// checkStuck deposes journals that made no progress for proposalTimeout.
func (n *Node) checkStuck() {
	now := time.Now()
	for _, p := range n.parts {
		if j := p.journal; j != nil && j.promoted && j.stuck(now, proposalTimeout) {
			n.log.Warn().Uint32("partition", p.id).Msg("no commit for the proposal timeout: failing the partition's pending work")
			n.depose(p)
		}
	}
}

// maybeSnapshot starts a snapshot of p once SnapshotEntries entries were
// applied since the last one; The machine encodes on the snapshotter's
// goroutine; the loop records the result (snapshotDone).
// force takes one as soon as anything was applied since the last.
func (n *Node) maybeSnapshot(p *partition, force bool) {
	due := p.snapIndex + n.cfg.SnapshotEntries
	if force {
		due = p.snapIndex + 1
	}
	if p.snapshotting || p.applied.Load() < due {
		return
	}
	p.snapshotting = true
	go func() {
		data, index, err := p.m.Snapshot(p.applied.Load)
		if err == nil {
			var term uint64
			if term, err = p.ms.Term(index); err == nil {
				snap := &raftpb.Snapshot{Data: data, Metadata: &raftpb.SnapshotMetadata{Index: &index, Term: &term, ConfState: p.confState}}
				err = p.saveSnapshot(snap)
			}
		}
		select {
		case n.snapc <- snapResult{p: p, index: index, data: data, err: err}:
		case <-n.stop:
		}
	}()
}

// snapshotDone makes a saved snapshot Raft's and compacts the in-memory
// log behind it.
func (n *Node) snapshotDone(r snapResult) {
	p := r.p
	p.snapshotting = false
	if r.err != nil {
		n.log.Error().Err(r.err).Uint32("partition", p.id).Msg("snapshot failed; the log keeps growing until one succeeds")
		return
	}
	if r.index <= p.snapIndex {
		return
	}
	if _, err := p.ms.CreateSnapshot(r.index, p.confState, r.data); err != nil {
		if !errors.Is(err, raft.ErrSnapOutOfDate) {
			n.log.Error().Err(err).Uint32("partition", p.id).Msg("snapshot not taken")
		}
		return
	}
	p.snapIndex = r.index
	n.stats.SnapshotsTaken.Add(1)
	if keep := n.cfg.CompactKeepEntries; r.index > keep {
		if err := p.ms.Compact(r.index - keep); err != nil && !errors.Is(err, raft.ErrCompacted) {
			n.log.Error().Err(err).Uint32("partition", p.id).Msg("compaction failed")
		}
	}
	if err := n.compactDisk(); err != nil && !errors.Is(err, errCompactNothing) {
		n.log.Error().Err(err).Msg("compacting the node's raft log failed; it keeps growing until a later snapshot compacts it")
	}
}

// rebalance hands one partition to the least loaded voter when this node
// leads more than its share, so that the load spreads over the nodes. It
// hands over the partition that proposed least since the last look: a
// transfer fails the work in flight on it (503, retried by the client), so
// the busiest partition of a sale in progress stays where it is.
func (n *Node) rebalance() {
	count := map[uint64]int{}
	for _, id := range n.cfg.Nodes {
		count[id] = 0
	}
	for _, p := range n.parts {
		if l := p.lead.Load(); l != 0 {
			count[l]++
		}
	}
	share := (len(n.parts) + len(n.cfg.Nodes) - 1) / len(n.cfg.Nodes)
	defer func() {
		for _, p := range n.parts {
			p.proposals = 0
		}
	}()
	if count[n.cfg.NodeID] <= share {
		return
	}
	var pick *partition
	var to uint64
	for _, p := range n.parts {
		st := p.rn.Status()
		if st.RaftState != raft.StateLeader || (pick != nil && p.proposals >= pick.proposals) {
			continue
		}
		var best uint64
		for id, pr := range st.Progress {
			if id != n.cfg.NodeID && pr.Match == st.GetCommit() && count[id] < share && (best == 0 || count[id] < count[best]) {
				best = id
			}
		}
		if best != 0 {
			pick, to = p, best
		}
	}
	if pick != nil {
		n.log.Info().Uint32("partition", pick.id).Uint64("to", to).Msg("handing the leadership over to spread the load")
		pick.rn.TransferLeader(to)
		n.notify()
	}
}
