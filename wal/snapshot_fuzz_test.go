package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzDecodeSnapshot feeds arbitrary bytes to the snapshot file decoder as
// a whole file. It must never panic; it must accept exactly the files the
// reference encoder produces (anything it accepts re-encodes to the same
// bytes); and the state it returns, so what it allocates, is never larger
// than the input. The same bytes read as a file that shrank after its size
// was taken must be refused as corrupt.
//
// Seeds live in testdata/fuzz/FuzzDecodeSnapshot; run it with
//
//	go test -run='^$' -fuzz=FuzzDecodeSnapshot -fuzztime=30s ./wal/
func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(appendSnapshot(nil, 1, []byte("state")))
	f.Fuzz(func(t *testing.T, data []byte) {
		index, state, err := decodeSnapshot(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			var cerr *SnapshotCorruptError
			if !errors.As(err, &cerr) {
				t.Fatalf("decodeSnapshot: %T %v, want *SnapshotCorruptError", err, err)
			}
		} else {
			if len(state) > len(data) {
				t.Fatalf("state of %d bytes from a %d-byte file", len(state), len(data))
			}
			if again := appendSnapshot(nil, index, state); !bytes.Equal(again, data) {
				t.Fatalf("accepted a file that does not re-encode to itself:\n%q\n%q", data, again)
			}
		}
		// The file is declared one byte longer than what can be read: the
		// decoder may trust a length matching the size, but must then
		// report the short read as corruption. Make the length match when
		// the input has a header, so the short read is reached.
		longer := bytes.Clone(data)
		if len(longer) >= snapHeaderBytes {
			binary.LittleEndian.PutUint64(longer[16:], uint64(len(longer)+1-snapFileBytes))
		}
		_, state, err = decodeSnapshot(bytes.NewReader(longer), int64(len(longer)+1))
		var cerr *SnapshotCorruptError
		if !errors.As(err, &cerr) || state != nil {
			t.Fatalf("file shorter than its size: err %v, %d state bytes; want *SnapshotCorruptError", err, len(state))
		}
	})
}
