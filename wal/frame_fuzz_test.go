package wal

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzFrame checks the frame decoder (entryAt, frameIntact) that Open,
// recovery and Replay rely on.
//
// On data as a segment: decoding never panics or reads out of bounds, and
// every entry that decodes intact re-encodes (length prefix, CRC-32C and
// record) to exactly the bytes it was read from, so one record has one
// encoding on disk. The resync scan over data never panics either.
//
// On data as a record: written as an entry followed by another one, it
// decodes back unchanged, and flipping any one bit of the two entries
// (bit picks which) is detected: some entry no longer decodes intact.
func FuzzFrame(f *testing.F) {
	rec := testRecord(7)
	entry := appendEntry(nil, rec)
	f.Add(entry, uint64(0))
	f.Add(append(appendEntry(nil, []byte("x")), entry...), uint64(3))
	f.Add(appendEntry(nil, bytes.Repeat([]byte{0xa5}, 200)), uint64(9))  // two-byte length
	f.Add(appendEntry(nil, bytes.Repeat([]byte{0}, 1<<14)), uint64(8*3)) // three-byte length
	f.Add([]byte{}, uint64(0))
	f.Add([]byte{0}, uint64(1))
	f.Add([]byte{4, 0, 0, 0, 0}, uint64(2))                                                    // empty record, CRC 0
	f.Add(make([]byte, 64), uint64(5))                                                         // zero fill
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, uint64(0)) // uvarint overflow
	f.Add(append([]byte{0x85, 0x00}, appendFrame(nil, []byte("x"))...), uint64(7))             // non-minimal length
	f.Add(entry[:len(entry)-1], uint64(4))                                                     // torn
	f.Fuzz(func(t *testing.T, data []byte, bit uint64) {
		checkDecode(t, data)
		budget := int64(1 << 16)
		scanIntact(data, 0, &budget, true)

		if len(data) == 0 {
			return // empty records are never written
		}
		next := []byte("the following record")
		seg := appendEntry(appendEntry(nil, data), next)
		recs, damaged := decodeSegment(seg)
		if damaged || len(recs) != 2 || !bytes.Equal(recs[0], data) || !bytes.Equal(recs[1], next) {
			t.Fatalf("entries of %x and %x decode as %x (damaged %v)", data, next, recs, damaged)
		}
		b := bit % uint64(8*len(seg))
		seg[b/8] ^= 1 << (b % 8)
		if recs, damaged := decodeSegment(seg); !damaged {
			t.Fatalf("flipping bit %d of byte %d of %x went unnoticed: records %x", b%8, b/8, seg, recs)
		}
	})
}

// appendEntry appends rec as tidwall/wal stores it: a uvarint length, then
// the frame.
func appendEntry(dst, rec []byte) []byte {
	frame := appendFrame(nil, rec)
	dst = binary.AppendUvarint(dst, uint64(len(frame)))
	return append(dst, frame...)
}

// checkDecode walks data entry by entry as findDamage does, checking each
// decoded entry, until the end or the first one that is not intact.
func checkDecode(t *testing.T, data []byte) {
	for off := 0; off < len(data); {
		frame, n, ok := entryAt(data, off)
		if !ok {
			return
		}
		if n <= 0 || n > len(data)-off || !bytes.Equal(frame, data[off+n-len(frame):off+n]) {
			t.Fatalf("entry at %d of %x: size %d, frame %x", off, data, n, frame)
		}
		if len(frame) < frameBytesMin || !frameIntact(frame) {
			return
		}
		if again := appendEntry(nil, frame[frameHeaderBytes:]); !bytes.Equal(again, data[off:off+n]) {
			t.Fatalf("entry at %d of %x: %x re-encodes as %x", off, data, data[off:off+n], again)
		}
		if entryBytes(len(frame)) != n {
			t.Fatalf("entry at %d of %x: entryBytes(%d) = %d, read %d", off, data, len(frame), entryBytes(len(frame)), n)
		}
		off += n
	}
}

// decodeSegment decodes seg as Replay does: the records of its entries, and
// whether an entry fails its checks.
func decodeSegment(seg []byte) (recs [][]byte, damaged bool) {
	for off := 0; off < len(seg); {
		frame, n, ok := entryAt(seg, off)
		if !ok || len(frame) < frameBytesMin || !frameIntact(frame) {
			return recs, true
		}
		recs = append(recs, frame[frameHeaderBytes:])
		off += n
	}
	return recs, false
}
