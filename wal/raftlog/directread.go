package raftlog

import (
	"bytes"

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

// isDirectRead reports whether m is a direct read's request or answer.
func isDirectRead(m *raftpb.Message) bool {
	return bytes.Equal(m.GetContext(), directReadMark)
}

// directReadLeader returns the leader a follower of p may ask directly,
// 0 when the standard ReadIndex round is needed: this node does not follow
// a known leader, or its acknowledgement with the leader's is not a
// majority.
func (n *Node) directReadLeader(p *partition) uint64 {
	if len(n.cfg.Nodes)/2+1 != 2 {
		return 0
	}
	st := p.rn.BasicStatus()
	if st.RaftState != raft.StateFollower || st.Lead == raft.None {
		return 0
	}
	return st.Lead
}

// directReadRequest is the request for a read barrier with context ctx,
// sent to leader.
func (n *Node) directReadRequest(p *partition, leader uint64, ctx []byte) Envelope {
	return Envelope{Partition: p.id, Msg: &raftpb.Message{
		Type:    raftpb.MessageType_MsgReadIndex.Enum(),
		From:    proto.Uint64(n.cfg.NodeID),
		To:      proto.Uint64(leader),
		Entries: []*raftpb.Entry{{Data: ctx}},
		Context: directReadMark,
	}}
}

// answerDirectRead handles a direct read's request on this node: a leader
// that has committed an entry of its term answers with that term and its
// commit index; any other node hands the request to Raft.
func (n *Node) answerDirectRead(p *partition, m *raftpb.Message) {
	st := p.rn.BasicStatus()
	if st.RaftState != raft.StateLeader || len(m.GetEntries()) != 1 {
		_ = p.rn.Step(m)
		return
	}
	if t, err := p.ms.Term(st.GetCommit()); err != nil || t != st.GetTerm() {
		// A new leader's commit index may lag entries of earlier terms
		// until its own first entry commits (Raft's ReadIndex waits too).
		_ = p.rn.Step(m)
		return
	}
	n.directOut = append(n.directOut, Envelope{Partition: p.id, Msg: &raftpb.Message{
		Type:    raftpb.MessageType_MsgReadIndexResp.Enum(),
		From:    proto.Uint64(n.cfg.NodeID),
		To:      proto.Uint64(m.GetFrom()),
		Term:    proto.Uint64(st.GetTerm()),
		Index:   proto.Uint64(st.GetCommit()),
		Entries: m.GetEntries(),
		Context: directReadMark,
	}})
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
		n.stats.ReadRoundsDirect.Add(1)
		n.readReturned(p, raft.ReadState{Index: m.GetIndex(), RequestCtx: ctx})
		return
	}
	p.rn.ReadIndex(ctx)
}

// takeDirectOut returns the direct reads' messages the loop has made since
// the last call.
func (n *Node) takeDirectOut() []Envelope {
	out := n.directOut
	n.directOut = nil
	return out
}
