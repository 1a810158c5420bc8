package raftlog

import (
	"fmt"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// followerOf returns a node of tc other than lead.
func followerOf(tc *testCluster, lead uint64) uint64 {
	for _, id := range tc.ids {
		if id != lead {
			return id
		}
	}
	return 0
}

// threeRoles returns partition 0's leader in a three-node tc, a follower,
// and the other follower.
func threeRoles(tc *testCluster) (lead, f, other uint64) {
	lead = tc.leader(0)
	f = followerOf(tc, lead)
	for _, id := range tc.ids {
		if id != lead && id != f {
			other = id
		}
	}
	return lead, f, other
}

// barrierHeld starts a read barrier on n and returns its result channel
// with the request it sent, which the test's network held back on asked.
func barrierHeld(t *testing.T, n *Node, asked <-chan *raftpb.Message, what string) (<-chan error, *raftpb.Message) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- n.ReadBarrier(0) }()
	select {
	case req := <-asked:
		return done, req
	case <-time.After(testWait):
		t.Fatalf("%s: no read request sent", what)
		return nil, nil
	}
}

// barrierSeesEachWrite commits writes records to partition 0 one at a
// time, and after each checks that a read barrier on node f returns with
// the record applied there.
func barrierSeesEachWrite(t *testing.T, tc *testCluster, f uint64, prefix string, writes int) {
	t.Helper()
	for i := range writes {
		rec := fmt.Sprintf("%s%02d", prefix, i)
		tc.submitOK(0, rec)
		if err := tc.nodes[f].ReadBarrier(0); err != nil {
			t.Fatalf("ReadBarrier: %v", err)
		}
		if s := tc.machines[f][0].state(); len(s) == 0 || s[len(s)-1] != rec {
			t.Fatalf("after the read barrier node %d's replica ends with %q, want %q", f, tail(s), rec)
		}
	}
}

// TestReadsAreDirectWhereTwoAreAMajority: among three voters every round
// of a follower's reads is the leader's direct answer, and every round of
// the leader's own reads one follower's confirmation; among five, where a
// leader and one follower are no majority, none is.
func TestReadsAreDirectWhereTwoAreAMajority(t *testing.T) {
	for _, voters := range []int{3, 5} {
		for _, reader := range []string{"follower", "leader"} {
			t.Run(fmt.Sprintf("%d voters, %s", voters, reader), func(t *testing.T) {
				tc := startCluster(t, voters, 1, 0)
				id := tc.leader(0)
				if reader == "follower" {
					id = followerOf(tc, id)
				}
				barrierSeesEachWrite(t, tc, id, "d", 10)
				rounds, direct := tc.nodes[id].Stats().ReadRounds.Load(), tc.nodes[id].Stats().ReadRoundsDirect.Load()
				want := rounds
				if voters > 3 {
					want = 0
				}
				if rounds == 0 || direct != want {
					t.Fatalf("%d read rounds, %d of them without Raft's ReadIndex round: want %d", rounds, direct, want)
				}
			})
		}
	}
}

// TestLeaderReadsWithAFollowerGone: the leader's reads go on, each within
// a few ticks, when the follower it would ask stops answering, and when
// one follower is stopped altogether.
func TestLeaderReadsWithAFollowerGone(t *testing.T) {
	tc := startCluster(t, 3, 1, 0)
	lead := tc.leader(0)
	f := followerOf(tc, lead)
	n := tc.nodes[lead]
	barrierSeesEachWrite(t, tc, lead, "a", 3)
	// Every confirmation request is lost: each read falls back to Raft's
	// round after two ticks.
	tc.nw.mu.Lock()
	tc.nw.drop = func(from uint64, m *raftpb.Message) bool { return isConfirm(m) }
	tc.nw.mu.Unlock()
	for range 3 {
		start := time.Now()
		if err := n.ReadBarrier(0); err != nil {
			t.Fatalf("ReadBarrier with confirmations lost: %v", err)
		}
		if d := time.Since(start); d > 20*testTick {
			t.Fatalf("a read with its confirmation lost took %v, want a few ticks (%v each)", d, testTick)
		}
	}
	tc.nw.mu.Lock()
	tc.nw.drop = nil
	tc.nw.mu.Unlock()
	tc.stop(f)
	before := n.Stats().ReadRoundsDirect.Load()
	barrierSeesEachWrite(t, tc, lead, "b", 5)
	if n.Stats().ReadRoundsDirect.Load() == before {
		t.Fatalf("with one follower stopped, no read of the leader was confirmed by the other")
	}
}

// TestDirectReadAnswerOnlyFromTheLeaderOfTheFollowersTerm forges the
// answers a follower must refuse: one from its leader in another term, one
// from a node that does not lead it. Each time the read is asked again the
// standard way, which answers it.
func TestDirectReadAnswerOnlyFromTheLeaderOfTheFollowersTerm(t *testing.T) {
	tc := startCluster(t, 3, 1, 0)
	lead, f, other := threeRoles(tc)
	n := tc.nodes[f]
	asked := make(chan *raftpb.Message, 1)
	tc.nw.mu.Lock()
	tc.nw.drop = func(from uint64, m *raftpb.Message) bool {
		if from != f || !isDirectRead(m) || m.GetType() != raftpb.MessageType_MsgReadIndex {
			return false
		}
		select {
		case asked <- proto.Clone(m).(*raftpb.Message):
		default:
		}
		return true
	}
	tc.nw.mu.Unlock()

	term := n.parts[0].term.Load()
	forgeries := []struct {
		name       string
		from, term uint64
	}{
		{"the leader in a later term", lead, term + 1},
		{"the leader in an earlier term", lead, term - 1},
		{"a node that does not lead, in the follower's term", other, term},
	}
	for i, fg := range forgeries {
		rec := fmt.Sprintf("f%d", i)
		tc.submitOK(0, rec)
		done, req := barrierHeld(t, n, asked, fg.name)
		n.Deliver(fg.from, []Envelope{{Partition: 0, Msg: &raftpb.Message{
			Type: raftpb.MessageType_MsgReadIndexResp.Enum(), From: proto.Uint64(fg.from), To: proto.Uint64(f),
			Term: proto.Uint64(fg.term), Index: proto.Uint64(1), Entries: req.GetEntries(), Context: directReadMark,
		}}})
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: ReadBarrier after the forged answer: %v, want the standard round's answer", fg.name, err)
			}
		case <-time.After(testWait):
			t.Fatalf("%s: ReadBarrier did not return", fg.name)
		}
		if direct := n.Stats().ReadRoundsDirect.Load(); direct != 0 {
			t.Fatalf("%s: the follower took a forged answer (%d direct reads)", fg.name, direct)
		}
		if s := tc.machines[f][0].state(); len(s) == 0 || s[len(s)-1] != rec {
			t.Fatalf("%s: after the read barrier the follower's replica ends with %q, want %q", fg.name, tail(s), rec)
		}
	}
}

// TestConfirmationOnlyFromAFollowerOfTheLeadersTerm: a follower confirms a
// leader only in its own term and only the leader it follows; a leader
// takes a confirmation only in its term, and otherwise asks Raft's round.
func TestConfirmationOnlyFromAFollowerOfTheLeadersTerm(t *testing.T) {
	tc := startCluster(t, 3, 1, 0)
	lead, f, other := threeRoles(tc)
	term := tc.nodes[lead].parts[0].term.Load()
	asked := make(chan *raftpb.Message, 16)
	confirmed := make(chan *raftpb.Message, 16)
	tc.nw.mu.Lock()
	tc.nw.drop = func(from uint64, m *raftpb.Message) bool {
		if !isConfirm(m) {
			return false
		}
		to := confirmed
		if m.GetType() == raftpb.MessageType_MsgReadIndex {
			to = asked
		}
		select {
		case to <- proto.Clone(m).(*raftpb.Message):
		default:
		}
		return true // the test hands on what it means to
	}
	tc.nw.mu.Unlock()

	ctx := readCtx(0, 1<<60)
	requests := []struct {
		name       string
		from, term uint64
		answered   bool
	}{
		{"from the leader in its term", lead, term, true},
		{"from the leader in a later term", lead, term + 1, false},
		{"from a node that does not lead", other, term, false},
	}
	for _, r := range requests {
		tc.nodes[f].Deliver(r.from, []Envelope{{Partition: 0, Msg: &raftpb.Message{
			Type: raftpb.MessageType_MsgReadIndex.Enum(), From: proto.Uint64(r.from), To: proto.Uint64(f),
			LogTerm: proto.Uint64(r.term), Entries: []*raftpb.Entry{{Data: ctx}}, Context: confirmMark,
		}}})
		select {
		case <-confirmed:
			if !r.answered {
				t.Fatalf("request %s: the follower confirmed it", r.name)
			}
		case <-time.After(20 * testTick):
			if r.answered {
				t.Fatalf("request %s: no confirmation", r.name)
			}
		}
	}

	// The leader's own read: its request is held, and a confirmation in a
	// later term is handed to it instead; it must ask Raft's round.
	n := tc.nodes[lead]
	done, req := barrierHeld(t, n, asked, "the leader's read")
	n.Deliver(req.GetTo(), []Envelope{{Partition: 0, Msg: &raftpb.Message{
		Type: raftpb.MessageType_MsgReadIndexResp.Enum(), From: proto.Uint64(req.GetTo()), To: proto.Uint64(lead),
		Term: proto.Uint64(term + 1), Entries: req.GetEntries(), Context: confirmMark,
	}}})
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ReadBarrier after a confirmation of another term: %v", err)
		}
	case <-time.After(testWait):
		t.Fatalf("ReadBarrier did not return")
	}
	if direct := n.Stats().ReadRoundsDirect.Load(); direct != 0 {
		t.Fatalf("the leader took a confirmation of another term (%d direct rounds)", direct)
	}
}
