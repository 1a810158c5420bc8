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

// TestFollowerReadsAreDirectWhereTwoAreAMajority: among three voters every
// round of a follower's reads is the leader's direct answer; among five,
// where the leader and one follower are no majority, none is.
func TestFollowerReadsAreDirectWhereTwoAreAMajority(t *testing.T) {
	for _, voters := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d voters", voters), func(t *testing.T) {
			tc := startCluster(t, voters, 1, 0)
			f := followerOf(tc, tc.leader(0))
			barrierSeesEachWrite(t, tc, f, "d", 10)
			rounds, direct := tc.nodes[f].Stats().ReadRounds.Load(), tc.nodes[f].Stats().ReadRoundsDirect.Load()
			want := rounds
			if voters > 3 {
				want = 0
			}
			if rounds == 0 || direct != want {
				t.Fatalf("%d read rounds, %d of them answered directly by the leader: want %d", rounds, direct, want)
			}
		})
	}
}

// TestDirectReadAnswerOnlyFromTheLeaderOfTheFollowersTerm forges the
// answers a follower must refuse: one from its leader in another term, one
// from a node that does not lead it. Each time the read is asked again the
// standard way, which answers it.
func TestDirectReadAnswerOnlyFromTheLeaderOfTheFollowersTerm(t *testing.T) {
	tc := startCluster(t, 3, 1, 0)
	lead := tc.leader(0)
	f := followerOf(tc, lead)
	other := uint64(0)
	for _, id := range tc.ids {
		if id != lead && id != f {
			other = id
		}
	}
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
		done := make(chan error, 1)
		go func() { done <- n.ReadBarrier(0) }()
		var req *raftpb.Message
		select {
		case req = <-asked:
		case <-time.After(testWait):
			t.Fatalf("%s: the follower sent no direct read request", fg.name)
		}
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
