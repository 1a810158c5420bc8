package raftlog

import (
	"bytes"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Direct reads: a follower's read barrier in a partition whose majority is
// two (three voters) takes one round trip to the leader instead of Raft's
// ReadIndex round of six messages through all three nodes.
//
// Raft's ReadIndex (ReadOnlySafe) has the leader note its commit index c
// when the request arrives, at t, and send a heartbeat of its term T; the
// index is safe to read at once a majority acknowledges that heartbeat,
// since a leader of a later term that could have committed anything by t
// needs a majority in that later term, which a node that acknowledges T
// after t had not joined. Here the leader answers the follower at once with
// (T, c), and the follower takes the answer only while its own term is
// still T and it follows that leader. Then at t the leader was in T (it
// answered as leader) and the follower was in T or earlier (terms only
// grow): two of the three voters had joined no later term, so no later
// leader existed to commit anything, and c, noted after the leader
// committed an entry of its own term, covers everything committed by t. The
// follower's acknowledgement, which it never needs to send, completes the
// majority. No clock is trusted, unlike a lease read.
//
// The request is Raft's own MsgReadIndex, marked in its Context: a node
// that does not know the mark, or a leader not yet able to answer, hands it
// to Raft, which answers (or forwards it) the standard way; a follower that
// cannot take a direct answer asks again by the standard way. Either way
// the caller's read group waits for one ReadState with its request's id.
var directReadMark = []byte("flashsale-direct-read/1")

// A leader's own read barrier, by the same argument, needs one follower
// that still follows it in its term: the leader notes its commit index c
// and asks the follower it heard from last to confirm (confirmMark); the
// follower answers only while it is in that term and follows that leader.
// Then, when the leader noted c, the leader and that follower had joined
// no later term, and c covers everything committed by then: one round trip
// with one follower instead of Raft's heartbeat to both and their
// acknowledgements. A confirmation that does not come within two ticks is
// asked again by Raft's round, so a follower that died costs a read at
// most two ticks. The request carries the leader's term in LogTerm, not
// Term: a node that does not know the mark hands it to Raft, which may
// forward it as a MsgReadIndex, and Raft sends those without a term.
var confirmMark = []byte("flashsale-confirm-lead/1")

// isDirectRead reports whether m is a direct read's request or answer.
func isDirectRead(m *raftpb.Message) bool {
	return bytes.Equal(m.GetContext(), directReadMark)
}

// isConfirm reports whether m is a leader's request for a confirmation or
// a follower's confirmation.
func isConfirm(m *raftpb.Message) bool {
	return bytes.Equal(m.GetContext(), confirmMark)
}

// twoAreAMajority reports whether this node and one other are a majority
// of the voters (every node of the cluster votes in every partition).
func (n *Node) twoAreAMajority() bool { return len(n.cfg.Nodes)/2+1 == 2 }

// confirmAsk is a leader's read barrier waiting for a follower's
// confirmation.
type confirmAsk struct {
	ctx   []byte
	index uint64 // the commit index noted when it was asked
	tick  uint64 // n.ticks when it was asked
}

// readIndex asks for the index a read barrier with context ctx must wait
// for: directly from the leader (a follower), with one follower's
// confirmation (a leader), or by Raft's ReadIndex round. The answer comes
// to readReturned either way.
func (n *Node) readIndex(p *partition, ctx []byte) {
	if lead := n.directReadLeader(p); lead != raft.None {
		n.sendRead(p, n.readMessage(raftpb.MessageType_MsgReadIndex, lead, directReadMark, []*raftpb.Entry{{Data: ctx}}))
		return
	}
	if n.askConfirmation(p, ctx) {
		return
	}
	p.rn.ReadIndex(ctx)
}

// askConfirmation sends a leader's confirmation request for a read barrier
// to the follower it heard from last, and reports whether it did.
func (n *Node) askConfirmation(p *partition, ctx []byte) bool {
	id, ok := readID(ctx)
	if !ok || !n.twoAreAMajority() {
		return false
	}
	term, commit, ok := leaderIndex(p)
	if !ok {
		return false
	}
	to := n.heardLast()
	if to == raft.None {
		return false
	}
	if p.confirming == nil {
		p.confirming = map[uint64]confirmAsk{}
	}
	p.confirming[id] = confirmAsk{ctx: ctx, index: commit, tick: n.ticks}
	m := n.readMessage(raftpb.MessageType_MsgReadIndex, to, confirmMark, []*raftpb.Entry{{Data: ctx}})
	m.LogTerm = proto.Uint64(term)
	n.sendRead(p, m)
	return true
}

// leaderIndex returns p's term and commit index when this node leads p and
// has committed an entry of its term (before that, a new leader's commit
// index may lag entries of earlier terms; Raft's ReadIndex waits too).
func leaderIndex(p *partition) (term, commit uint64, ok bool) {
	st := p.rn.BasicStatus()
	if st.RaftState != raft.StateLeader {
		return 0, 0, false
	}
	if t, err := p.ms.Term(st.GetCommit()); err != nil || t != st.GetTerm() {
		return 0, 0, false
	}
	return st.GetTerm(), st.GetCommit(), true
}

// heardLast returns the peer whose message reached this node last within
// the election timeout, or raft.None.
func (n *Node) heardLast() uint64 {
	var best uint64
	var at time.Time
	for id, t := range n.heard {
		if t.After(at) {
			best, at = id, t
		}
	}
	if best == raft.None || time.Since(at) > time.Duration(n.cfg.ElectionTicks)*n.cfg.TickInterval {
		return raft.None
	}
	return best
}

// confirmLead answers a leader's confirmation request on a follower: only
// while this node is in the request's term and follows its sender.
// Otherwise it stays silent, and the leader asks Raft's round instead.
func (n *Node) confirmLead(p *partition, m *raftpb.Message) {
	st := p.rn.BasicStatus()
	if st.RaftState != raft.StateFollower || st.GetTerm() != m.GetLogTerm() || st.Lead != m.GetFrom() || len(m.GetEntries()) != 1 {
		return
	}
	resp := n.readMessage(raftpb.MessageType_MsgReadIndexResp, m.GetFrom(), confirmMark, m.GetEntries())
	resp.Term = proto.Uint64(m.GetLogTerm())
	n.sendRead(p, resp)
}

// leadConfirmed takes a follower's confirmation on the leader that asked:
// the read waits for the index noted when it was asked.
func (n *Node) leadConfirmed(p *partition, m *raftpb.Message) {
	if len(m.GetEntries()) != 1 {
		return
	}
	id, ok := readID(m.GetEntries()[0].GetData())
	if !ok {
		return
	}
	a, ok := p.confirming[id]
	if !ok {
		return // asked again by Raft's round already
	}
	delete(p.confirming, id)
	st := p.rn.BasicStatus()
	if st.RaftState != raft.StateLeader || st.GetTerm() != m.GetTerm() {
		p.rn.ReadIndex(a.ctx)
		return
	}
	n.readReturned(p, raft.ReadState{Index: a.index, RequestCtx: a.ctx}, true)
}

// retryConfirmations asks Raft's round for the leader's read barriers
// whose confirmation has not come within two ticks.
func (n *Node) retryConfirmations() {
	for _, p := range n.parts {
		for id, a := range p.confirming {
			if n.ticks-a.tick >= 2 {
				delete(p.confirming, id)
				p.rn.ReadIndex(a.ctx)
			}
		}
	}
}

// directReadLeader returns the leader a follower of p may ask directly,
// 0 when the standard ReadIndex round is needed: this node does not follow
// a known leader, or its acknowledgement with the leader's is not a
// majority.
func (n *Node) directReadLeader(p *partition) uint64 {
	if !n.twoAreAMajority() {
		return 0
	}
	st := p.rn.BasicStatus()
	if st.RaftState != raft.StateFollower || st.Lead == raft.None {
		return 0
	}
	return st.Lead
}

// answerDirectRead handles a direct read's request on this node: a leader
// that has committed an entry of its term answers with that term and its
// commit index; any other node hands the request to Raft.
func (n *Node) answerDirectRead(p *partition, m *raftpb.Message) {
	term, commit, ok := leaderIndex(p)
	if !ok || len(m.GetEntries()) != 1 {
		_ = p.rn.Step(m)
		return
	}
	resp := n.readMessage(raftpb.MessageType_MsgReadIndexResp, m.GetFrom(), directReadMark, m.GetEntries())
	resp.Term, resp.Index = proto.Uint64(term), proto.Uint64(commit)
	n.sendRead(p, resp)
}

// directReadAnswered handles a leader's direct answer on the follower that
// asked: taken while this node is still in the answer's term, following
// its sender; otherwise the read is asked again by the standard round.
func (n *Node) directReadAnswered(p *partition, m *raftpb.Message) {
	if len(m.GetEntries()) != 1 {
		return
	}
	ctx := m.GetEntries()[0].GetData()
	st := p.rn.BasicStatus()
	if st.RaftState == raft.StateFollower && st.GetTerm() == m.GetTerm() && st.Lead == m.GetFrom() {
		n.readReturned(p, raft.ReadState{Index: m.GetIndex(), RequestCtx: ctx}, true)
		return
	}
	p.rn.ReadIndex(ctx)
}

// readMessage is a marked read request or answer from this node to to.
func (n *Node) readMessage(typ raftpb.MessageType, to uint64, mark []byte, entries []*raftpb.Entry) *raftpb.Message {
	return &raftpb.Message{Type: typ.Enum(), From: proto.Uint64(n.cfg.NodeID), To: proto.Uint64(to), Entries: entries, Context: mark}
}

// sendRead queues m of partition p for the round's send.
func (n *Node) sendRead(p *partition, m *raftpb.Message) {
	n.directOut = append(n.directOut, Envelope{Partition: p.id, Msg: m})
}

// stepMarkedRead handles a received message of this file's reads and
// reports whether m was one; Raft never sees them.
func (n *Node) stepMarkedRead(p *partition, m *raftpb.Message) bool {
	request := m.GetType() == raftpb.MessageType_MsgReadIndex
	if !request && m.GetType() != raftpb.MessageType_MsgReadIndexResp {
		return false
	}
	switch {
	case isDirectRead(m) && request:
		n.answerDirectRead(p, m)
	case isDirectRead(m):
		n.directReadAnswered(p, m)
	case isConfirm(m) && request:
		n.confirmLead(p, m)
	case isConfirm(m):
		n.leadConfirmed(p, m)
	default:
		return false
	}
	return true
}

// takeDirectOut returns the direct reads' messages the loop has made since
// the last call.
func (n *Node) takeDirectOut() []Envelope {
	out := n.directOut
	n.directOut = nil
	return out
}
