package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"

	"github.com/flashsale/flashsale/wal"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The node's disk: Dir/wal is one wal.Log holding the entries and HardStates
// of every partition (disk records, see entry.go), Dir/snap/pNN holds
// partition NN's snapshots as wal snapshot files whose state is
//
//	term        8 bytes little-endian: the term of the snapshot's index
//	conf state  uvarint length + raftpb.ConfState proto
//	data        the machine's snapshot, to the end
//
// and whose index is the snapshot's Raft index.

func walDir(dir string) string { return filepath.Join(dir, "wal") }

func snapDir(dir string, p uint32) string {
	return filepath.Join(dir, "snap", fmt.Sprintf("p%02d", p))
}

// diskPartition is what a partition's part of the disk holds at Open.
type diskPartition struct {
	snap *raftpb.Snapshot // the newest intact snapshot, or nil
	hard *raftpb.HardState
	ents []*raftpb.Entry // after snap, contiguous
	// marks are where the partition's entries lie in the wal (see
	// diskMark); loaded from the replay.
	marks []diskMark
}

// diskMark says that the partition's entries up to raftLast were written in
// the wal at walFirst or later: a wal cut at walFirst or before keeps them.
type diskMark struct {
	raftLast, walFirst uint64
}

func saveSnapshot(dir string, snap *raftpb.Snapshot) error {
	md := snap.GetMetadata()
	cs, err := proto.Marshal(md.GetConfState())
	if err != nil {
		return err
	}
	state := binary.LittleEndian.AppendUint64(make([]byte, 0, 8+binary.MaxVarintLen64+len(cs)+len(snap.GetData())), md.GetTerm())
	state = binary.AppendUvarint(state, uint64(len(cs)))
	state = append(state, cs...)
	state = append(state, snap.GetData()...)
	return wal.SaveSnapshot(dir, md.GetIndex(), state)
}

// saveSnapshot saves snap in the partition's snapshot directory. The node
// log's entries up to the newest snapshot may then be cut: a node whose
// newest snapshot is later found damaged refuses to start (entries are
// missing) and is rebuilt from its peers with an empty data directory.
func (p *partition) saveSnapshot(snap *raftpb.Snapshot) error {
	p.snapMu.Lock()
	defer p.snapMu.Unlock()
	idx := snap.GetMetadata().GetIndex()
	if err := saveSnapshot(p.snapDir, snap); err != nil {
		return err
	}
	if idx > p.snapKept.Load() {
		p.snapKept.Store(idx)
	}
	return nil
}

func loadSnapshot(dir string) (*raftpb.Snapshot, error) {
	index, state, ok, _, err := wal.LoadSnapshot(dir)
	if err != nil || !ok {
		return nil, err
	}
	if len(state) < 9 {
		return nil, fmt.Errorf("raftlog: snapshot %d in %s is too short", index, dir)
	}
	term := binary.LittleEndian.Uint64(state)
	l, n := binary.Uvarint(state[8:])
	if n <= 0 || l > uint64(len(state)-8-n) {
		return nil, fmt.Errorf("raftlog: snapshot %d in %s has a bad conf state", index, dir)
	}
	cs := &raftpb.ConfState{}
	if err := proto.Unmarshal(state[8+n:8+n+int(l)], cs); err != nil {
		return nil, fmt.Errorf("raftlog: snapshot %d in %s: %w", index, dir, err)
	}
	data := state[8+n+int(l):]
	return &raftpb.Snapshot{Data: data, Metadata: &raftpb.SnapshotMetadata{Index: &index, Term: &term, ConfState: cs}}, nil
}

// loadDisk reads every partition's snapshot and replays the node's log.
// An entry at index i drops the partition's entries at i and above first:
// Raft overwrote a conflicting suffix there.
func loadDisk(dir string, partitions int, wlog *wal.Log) ([]diskPartition, error) {
	disk := make([]diskPartition, partitions)
	for p := range disk {
		snap, err := loadSnapshot(snapDir(dir, uint32(p)))
		if err != nil {
			return nil, err
		}
		disk[p].snap = snap
	}
	walIndex := wlog.FirstIndex()
	err := wlog.Replay(func(rec []byte) error {
		defer func() { walIndex++ }()
		kind, p, ent, hs, err := decodeDiskRecord(rec)
		if err != nil {
			return err
		}
		if int(p) >= partitions {
			return fmt.Errorf("raftlog: the log holds partition %d, but the cluster has %d", p, partitions)
		}
		d := &disk[p]
		switch kind {
		case diskHardState:
			d.hard = hs
		case diskEntry:
			idx := ent.GetIndex()
			if d.snap != nil && idx <= d.snap.GetMetadata().GetIndex() {
				return nil
			}
			for len(d.ents) > 0 && d.ents[len(d.ents)-1].GetIndex() >= idx {
				d.ents = d.ents[:len(d.ents)-1]
			}
			want := uint64(1)
			if len(d.ents) > 0 {
				want = d.ents[len(d.ents)-1].GetIndex() + 1
			} else if d.snap != nil {
				want = d.snap.GetMetadata().GetIndex() + 1
			}
			if idx != want {
				return fmt.Errorf("raftlog: partition %d: entry %d follows %d in the log: entries are missing", p, idx, want-1)
			}
			d.ents = append(d.ents, ent)
			if n := len(d.marks); n == 0 || d.marks[n-1].walFirst != walIndex {
				d.marks = append(d.marks, diskMark{raftLast: idx, walFirst: walIndex})
			} else {
				d.marks[n-1].raftLast = idx
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for p := range disk {
		d := &disk[p]
		if d.snap == nil || d.hard == nil {
			continue
		}
		// A snapshot received from the leader is saved before the HardState
		// of its round: a crash between the two leaves a commit index
		// behind a snapshot, which is committed by definition.
		md := d.snap.GetMetadata()
		if d.hard.GetCommit() < md.GetIndex() {
			c := md.GetIndex()
			d.hard.Commit = &c
		}
		if d.hard.GetTerm() < md.GetTerm() {
			t := md.GetTerm()
			d.hard.Term = &t
		}
	}
	return disk, nil
}

// defaultDiskCompactRecords is how many records the wal must hold before
// the front that no partition needs any more is cut: a cut rewrites every
// partition's HardState, so it is not worth doing for a few records.
const defaultDiskCompactRecords = 50_000

// errCompactNothing says there is nothing worth cutting yet.
var errCompactNothing = errors.New("raftlog: nothing to compact")

// compactDisk cuts the front of the node's log that every partition has in
// a snapshot. A partition needs its entries after its newest snapshot and
// its newest HardState, which is written again before the cut. A quiet
// partition whose entries pin the front is snapshotted now (the cut
// follows that snapshot). It runs on the loop goroutine.
func (n *Node) compactDisk() error {
	first, last := n.wlog.FirstIndex(), n.wlog.LastIndex()
	if last < first || last-first+1 < n.cfg.DiskCompactRecords {
		return errCompactNothing
	}
	cut := uint64(math.MaxUint64)
	for _, p := range n.parts {
		for _, m := range p.marks {
			if m.raftLast > p.snapKept.Load() {
				cut = min(cut, m.walFirst)
				if m.walFirst-first < n.cfg.DiskCompactRecords/2 {
					n.maybeSnapshot(p, true)
				}
				break
			}
		}
	}
	var recs [][]byte
	for _, p := range n.parts {
		hs := p.hardState
		if hs == nil {
			continue
		}
		b, err := appendDiskRecord(nil, diskHardState, p.id, hs)
		if err != nil {
			return err
		}
		recs = append(recs, b)
	}
	hardFirst := last + 1
	if len(recs) > 0 {
		if err := n.persist(recs); err != nil {
			return err
		}
	}
	cut = min(cut, hardFirst)
	if cut <= first || cut-first < n.cfg.DiskCompactRecords/2 {
		return errCompactNothing
	}
	if err := n.wlog.TruncateFront(cut); err != nil {
		return err
	}
	for _, p := range n.parts {
		k := 0
		for k < len(p.marks) && p.marks[k].walFirst < cut {
			k++
		}
		p.marks = append(p.marks[:0], p.marks[k:]...)
	}
	n.stats.DiskCompactions.Add(1)
	return nil
}

// persist appends recs to the node's log and waits for the fsync.
func (n *Node) persist(recs [][]byte) error {
	errc := make(chan error, 1)
	n.wlog.Submit(recs, func(err error) { errc <- err })
	if err := <-errc; err != nil {
		return err
	}
	n.stats.Fsyncs.Add(1)
	return nil
}
