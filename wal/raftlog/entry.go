package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Entry data, the bytes of a normal Raft entry of a partition:
//
//	kind    1 byte: entryBatch or entryBarrier
//	origin  8 bytes little-endian: the proposing Journal's nonce (random per promotion)
//	seq     uvarint: the proposal's number within that Journal, from 1
//	batch:  uvarint record count, then per record uvarint length + bytes
//
// An empty entry (Data nil) is Raft's own, appended by every new leader.
const (
	entryBatch   byte = 1
	entryBarrier byte = 2
)

// entryHeaderBytesMax bounds the header before the records.
const entryHeaderBytesMax = 1 + 8 + binary.MaxVarintLen64

func appendEntryHeader(dst []byte, kind byte, origin, seq uint64) []byte {
	dst = append(dst, kind)
	dst = binary.LittleEndian.AppendUint64(dst, origin)
	return binary.AppendUvarint(dst, seq)
}

type entryData struct {
	kind        byte
	origin, seq uint64
	records     [][]byte // views of the entry's bytes
}

var errBadEntry = errors.New("raftlog: malformed entry")

func decodeEntryData(b []byte, into *entryData) error {
	if len(b) < 9 {
		return errBadEntry
	}
	into.kind = b[0]
	into.origin = binary.LittleEndian.Uint64(b[1:9])
	b = b[9:]
	seq, n := binary.Uvarint(b)
	if n <= 0 {
		return errBadEntry
	}
	into.seq = seq
	b = b[n:]
	into.records = into.records[:0]
	switch into.kind {
	case entryBarrier:
		if len(b) != 0 {
			return errBadEntry
		}
		return nil
	case entryBatch:
	default:
		return fmt.Errorf("raftlog: unknown entry kind %d", into.kind)
	}
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return errBadEntry
	}
	b = b[n:]
	for i := uint64(0); i < count; i++ {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return errBadEntry
		}
		into.records = append(into.records, b[n:n+int(l):n+int(l)])
		b = b[n+int(l):]
	}
	if len(b) != 0 {
		return errBadEntry
	}
	return nil
}

// Records of the node's own disk log (one wal.Log per node):
//
//	kind       1 byte: diskEntry or diskHardState
//	partition  uvarint
//	body       proto bytes of a raftpb.Entry or raftpb.HardState
//
// Replay applies them in order; an entry at index i drops every entry of
// its partition at i and above first (Raft overwrote a conflicting suffix).
const (
	diskEntry     byte = 1
	diskHardState byte = 2
)

func appendDiskRecord(dst []byte, kind byte, partition uint32, m proto.Message) ([]byte, error) {
	dst = append(dst, kind)
	dst = binary.AppendUvarint(dst, uint64(partition))
	return proto.MarshalOptions{}.MarshalAppend(dst, m)
}

func decodeDiskRecord(b []byte) (kind byte, partition uint32, ent *raftpb.Entry, hs *raftpb.HardState, err error) {
	if len(b) < 2 {
		return 0, 0, nil, nil, errors.New("raftlog: short disk record")
	}
	kind = b[0]
	p, n := binary.Uvarint(b[1:])
	if n <= 0 || p > partitionsMax {
		return 0, 0, nil, nil, errors.New("raftlog: bad partition in disk record")
	}
	body := b[1+n:]
	switch kind {
	case diskEntry:
		ent = &raftpb.Entry{}
		err = proto.Unmarshal(body, ent)
	case diskHardState:
		hs = &raftpb.HardState{}
		err = proto.Unmarshal(body, hs)
	default:
		err = fmt.Errorf("raftlog: unknown disk record kind %d", kind)
	}
	return kind, uint32(p), ent, hs, err
}

// Envelope is one Raft message of one partition, as the peer transport
// carries it between nodes.
type Envelope struct {
	Partition uint32
	Msg       *raftpb.Message
}
