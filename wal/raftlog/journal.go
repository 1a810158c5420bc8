package raftlog

import (
	"errors"
	"sync"
	"time"
)

// ErrUnavailable fails the submissions of a partition that lost its
// leadership (or whose proposal Raft dropped) before they were committed,
// and every submission after that. Its Unavailable method says true, which
// the engine answers with 503 unavailable: the outcome is unknown to the
// caller, and nothing was acknowledged.
var ErrUnavailable error = unavailableError{}

type unavailableError struct{}

func (unavailableError) Error() string {
	return "raftlog: not the partition's leader, or no majority: nothing was acknowledged"
}
func (unavailableError) Unavailable() bool { return true }

// IsUnavailable reports whether err is ErrUnavailable.
func IsUnavailable(err error) bool { return errors.Is(err, ErrUnavailable) }

// Journal is the engine's journal of a partition this node leads: Submit
// proposes, and done runs once the submission's entry is committed on a
// majority and applied here. Submissions are acknowledged strictly in the
// order of Submit; one with no records is a read barrier, acknowledged once
// a ReadIndex round confirms the leadership after everything submitted
// before it. A Journal serves one leadership term: once it fails (the node
// lost the leadership) every later Submit fails at once, and a new term
// gets a new Journal.
type Journal struct {
	node  *Node
	p     *partition
	nonce uint64 // origin of this Journal's entries
	term  uint64 // the Raft term it leads

	mu       sync.Mutex
	err      error
	waiting  []submission // submitted, not yet proposed
	inflight []*inflight  // proposed or asked to read, oldest first
	promoted bool         // the barrier was applied; Machine.Promote was called
	seqNext  uint64       // the loop's: seq of the last proposal
	// lastProgress is when the journal last acknowledged something or
	// went from idle to busy: the loop fails a journal that made no
	// progress for proposalTimeout.
	lastProgress time.Time
}

type submission struct {
	records [][]byte
	done    func(error)
}

// inflight is one proposal (an entry with seq) or one read barrier (a
// ReadIndex request), with the submissions it acknowledges.
type inflight struct {
	seq       uint64 // proposal: its entry's seq; 0 for a read
	readID    uint64 // read: the ReadIndex request
	readIndex uint64 // read: the index to apply first, once known
	readKnown bool
	complete  bool
	dones     []func(error)
}

// Submit queues records as one submission (see engine.Journal).
func (j *Journal) Submit(records [][]byte, done func(error)) {
	if j.node.cfg.FaultAckUncommitted {
		done(nil)
		return
	}
	j.mu.Lock()
	if j.err != nil {
		err := j.err
		j.mu.Unlock()
		done(err)
		return
	}
	if len(j.waiting) == 0 && len(j.inflight) == 0 {
		j.lastProgress = time.Now()
	}
	j.waiting = append(j.waiting, submission{records: records, done: done})
	j.mu.Unlock()
	j.node.notify()
}

// fail fails everything not yet acknowledged, in order, and every later
// submission.
func (j *Journal) fail(err error) {
	j.mu.Lock()
	if j.err == nil {
		j.err = err
	}
	var dones []func(error)
	for _, f := range j.inflight {
		dones = append(dones, f.dones...)
	}
	for _, s := range j.waiting {
		dones = append(dones, s.done)
	}
	j.inflight, j.waiting = nil, nil
	j.mu.Unlock()
	for _, d := range dones {
		d(err)
	}
}

// takeWaiting returns the submissions waiting to be proposed.
func (j *Journal) takeWaiting() []submission {
	j.mu.Lock()
	defer j.mu.Unlock()
	w := j.waiting
	j.waiting = nil
	return w
}

// track appends f to the in-flight list, unless the journal failed, in which
// case its submissions fail now.
func (j *Journal) track(f *inflight) {
	j.mu.Lock()
	if j.err != nil {
		err := j.err
		j.mu.Unlock()
		for _, d := range f.dones {
			d(err)
		}
		return
	}
	j.inflight = append(j.inflight, f)
	j.mu.Unlock()
}

// applied marks the proposal seq as committed and applied and the reads
// whose index is now applied as done, then acknowledges the complete prefix.
func (j *Journal) advance(seq, appliedIndex uint64) {
	j.mu.Lock()
	for _, f := range j.inflight {
		if seq != 0 && f.seq == seq {
			f.complete = true
		}
		if f.seq == 0 && f.readKnown && f.readIndex <= appliedIndex {
			f.complete = true
		}
	}
	n := 0
	for n < len(j.inflight) && j.inflight[n].complete {
		n++
	}
	var dones []func(error)
	for _, f := range j.inflight[:n] {
		dones = append(dones, f.dones...)
	}
	j.inflight = j.inflight[n:]
	if n > 0 {
		j.lastProgress = time.Now()
	}
	j.mu.Unlock()
	for _, d := range dones {
		d(nil)
	}
}

// readReturned records the index a ReadIndex request of this journal must
// wait for.
func (j *Journal) readReturned(readID, index uint64) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, f := range j.inflight {
		if f.seq == 0 && f.readID == readID {
			f.readIndex, f.readKnown = index, true
			return true
		}
	}
	return false
}

// stuck reports whether work has waited longer than d without any
// acknowledgement.
func (j *Journal) stuck(now time.Time, d time.Duration) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	busy := len(j.inflight) > 0 || len(j.waiting) > 0
	return busy && now.Sub(j.lastProgress) > d
}

// Err is the error the journal failed with, nil while it serves. A machine
// checks it in Promote: a journal deposed before Promote ran is not taken.
func (j *Journal) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}
