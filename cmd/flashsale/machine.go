package main

import (
	"crypto/sha256"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/wal/raftlog"
	"github.com/rs/zerolog"
)

// partitionMachine is one partition's raftlog.Machine over the engine. As a
// replica, its engine stays in its replay phase and applies every committed
// record (product reads are served from it after a read barrier). Promoted,
// the same engine is started with the leadership's Journal: it serves
// commands, and expires holds and orders as records, like a single node.
// Reset drops the engine for a new replica; a live one is failed first, so
// that it refuses everything, and stopped after deposedStopGrace.
type partitionMachine struct {
	p         int
	newEngine func(j engine.Journal) *engine.Engine
	seed      []engine.ProductSpec // the seed products of this partition
	log       zerolog.Logger
	applied   func() uint64 // the node's applied index of the partition

	// mu serialises Replay, Restore, Reset and Promote's hand-over, and is
	// held while a snapshot or digest is encoded.
	mu      sync.Mutex
	eng     *engine.Engine
	journal *leaderJournal
	index   uint64 // of the last entry the replica reflects
	live    bool   // promoted: the engine is (being) started on the leadership's journal
	started bool   // live, and Start has returned

	cur atomic.Pointer[engineView] // read by every request
}

// engineView is what requests see of the partition: its engine and
// whether that engine takes commands here.
type engineView struct {
	eng     *engine.Engine
	leading bool
}

var errPromoting = errors.New("flashsale: the partition is being promoted; try again")

// deposedStopGrace is how long a deposed leader's engine keeps running,
// refusing, before it is stopped: a request that loaded it just before the
// deposition must still find it answering.
const deposedStopGrace = 10 * time.Second

func (m *partitionMachine) Replay(index uint64, records [][]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live {
		return errors.New("flashsale: replay into a live partition")
	}
	for _, r := range records {
		if err := m.eng.Replay(r); err != nil {
			return err
		}
	}
	m.index = index
	return nil
}

func (m *partitionMachine) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old := m.eng; old != nil && m.live {
		old.Fail(raftlog.ErrUnavailable)
		time.AfterFunc(deposedStopGrace, old.Stop)
	}
	m.journal = &leaderJournal{}
	m.eng = m.newEngine(m.journal)
	m.index, m.live, m.started = 0, false, false
	m.cur.Store(&engineView{eng: m.eng})
}

func (m *partitionMachine) Restore(index uint64, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.eng.LoadSnapshot(data); err != nil {
		return err
	}
	m.index = index
	m.cur.Store(&engineView{eng: m.eng})
	return nil
}

// Promote starts the replica's engine on j, seeds an empty partition, and
// then lets requests in.
func (m *partitionMachine) Promote(j *raftlog.Journal) {
	m.mu.Lock()
	if j.Err() != nil {
		m.mu.Unlock()
		return
	}
	eng := m.eng
	m.journal.j.Store(j)
	m.live = true
	m.mu.Unlock()

	// Start releases what expired while no node led the partition, as
	// records through j: outside mu, since the loop must commit them.
	eng.Start()
	m.seedIfEmpty(eng)
	m.mu.Lock()
	if m.eng == eng && m.live {
		m.started = true
		m.cur.Store(&engineView{eng: eng, leading: true})
		m.log.Info().Int("partition", m.p).Msg("leading the partition")
	}
	m.mu.Unlock()
}

// seedIfEmpty creates the partition's seed products that are missing,
// unless the partition holds a product that is not a seed product: the
// seed goes only into an empty cluster, and a first leader deposed half
// way leaves a part of it for the next leader to finish.
func (m *partitionMachine) seedIfEmpty(eng *engine.Engine) {
	if len(m.seed) == 0 {
		return
	}
	seedIDs := map[uint64]bool{}
	for _, s := range m.seed {
		seedIDs[s.ID] = true
	}
	for _, p := range eng.Products(nil) {
		if !seedIDs[p.ID] {
			return
		}
	}
	for _, s := range m.seed {
		if _, ok := eng.Product(s.ID); ok {
			continue
		}
		if _, code := eng.CreateProduct(s); code != engine.OK {
			m.log.Warn().Int("partition", m.p).Uint64("product", s.ID).Str("code", string(code)).
				Msg("seeding the partition stopped; its next leader finishes it")
			return
		}
	}
}

func (m *partitionMachine) view() engineView { return *m.cur.Load() }

// Snapshot encodes the partition's state and the index it reflects. A live
// engine is paused first (which waits until everything it submitted is
// committed): its state then is exactly the committed log's.
func (m *partitionMachine) Snapshot(applied func() uint64) ([]byte, uint64, error) {
	return m.encode(nil, time.Now(), applied)
}

// digest is the SHA-256 of the canonical state (nothing left out for its
// age) and the applied index it reflects: equal on every replica at the
// same index.
func (m *partitionMachine) digest() (uint64, [32]byte, error) {
	data, index, err := m.encode(nil, time.Unix(0, 0), m.applied)
	if err != nil {
		return 0, [32]byte{}, err
	}
	return index, sha256.Sum256(data), nil
}

func (m *partitionMachine) encode(dst []byte, now time.Time, applied func() uint64) ([]byte, uint64, error) {
	view, index, err := m.capture(now, applied)
	if err != nil {
		return nil, 0, err
	}
	return view.AppendTo(dst), index, nil // the engine runs on meanwhile
}

// capture takes a view of the partition's state and the index it
// reflects; a live engine is paused only while the view is taken.
func (m *partitionMachine) capture(now time.Time, applied func() uint64) (*engine.SnapshotView, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.live {
		return m.eng.CaptureSnapshot(now), m.index, nil
	}
	if !m.started {
		return nil, 0, errPromoting
	}
	resume, err := m.eng.Pause()
	if err != nil {
		return nil, 0, err
	}
	defer resume()
	// While mu is held the loop cannot rebuild the partition, and while
	// the engine is paused nothing new is proposed: the applied index is
	// that of the engine's last committed entry.
	return m.eng.CaptureSnapshot(now), applied(), nil
}

// stop stops a live engine (at shutdown, after the node stopped).
func (m *partitionMachine) stop() {
	m.mu.Lock()
	eng, started := m.eng, m.started
	m.mu.Unlock()
	if started {
		eng.Stop()
	}
}

// leaderJournal is the engine's Journal: the leadership's raftlog.Journal
// once the partition is promoted; before that nothing may be submitted.
type leaderJournal struct {
	j atomic.Pointer[raftlog.Journal]
}

func (l *leaderJournal) Submit(records [][]byte, done func(error)) {
	if j := l.j.Load(); j != nil {
		j.Submit(records, done)
		return
	}
	done(raftlog.ErrUnavailable)
}
