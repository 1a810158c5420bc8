// Package raftlog is the write-ahead log replicated by Raft: the cluster
// mode's journal. It moves opaque record batches, exactly like package wal,
// and knows nothing of the engine; cmd wires its callbacks to one engine per
// partition.
//
// One Node runs every partition (Raft group) of this machine in one loop
// over etcd's raft.RawNode (go.etcd.io/raft/v3): each round it feeds the
// received messages and ticks, turns the waiting submissions of every
// partition into one proposal each, persists what every partition's Ready
// asks for in one batch of the node's single wal.Log (one fsync per round,
// whatever the number of partitions), then sends the messages, applies the
// committed entries and advances. Messages go after the fsync that makes
// their entries and HardState durable, as Raft requires.
//
// A partition on a node is in one of two modes. As a replica it applies
// every committed entry through Machine.Replay. When this node becomes the
// partition's leader it proposes a barrier entry; once the barrier is
// applied, everything committed before it is in the replica, and the
// partition is promoted: Machine.Promote hands the engine a Journal whose
// Submit proposes. The leader's engine applies its commands speculatively,
// as on a single node, and the Journal acknowledges each submission only
// when its entry is committed and applied, in submission order. Entries
// the leader itself proposed are not applied again. When the node loses
// leadership (or a proposal is dropped) every unacknowledged submission
// fails with an error whose Unavailable() is true, and the partition's
// state is rebuilt from the committed log (Machine.Reset, Restore of the
// snapshot, Replay of the committed entries) before it serves again: no
// caller ever gets an answer that a later leader undoes.
//
// Reads: a submission with no records (the engine's read barrier) is
// acknowledged after a ReadIndex round confirms the leadership and the
// applied index reaches the read index; ReadBarrier does the same for a
// follower's local product reads.
package raftlog
