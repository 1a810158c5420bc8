package wal

import (
	"encoding/binary"
	"hash/crc32"
)

// frameHeaderBytes is the CRC-32C that precedes every record in an entry.
const frameHeaderBytes = 4

// frameBytesMin is the shortest intact frame: a header and a non-empty
// record. Empty records are refused (ErrEmptyRecord) so that a run of zero bytes
// (length 0, or "04 00 00 00 00" = empty record with CRC 0) can never pass
// for an intact frame.
const frameBytesMin = frameHeaderBytes + 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendFrame appends the frame of rec to dst.
func appendFrame(dst, rec []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(rec, castagnoli))
	return append(dst, rec...)
}

// frameIntact reports whether frame is a header followed by a non-empty
// record whose CRC-32C matches.
func frameIntact(frame []byte) bool {
	if len(frame) < frameBytesMin {
		return false
	}
	return binary.LittleEndian.Uint32(frame) == crc32.Checksum(frame[frameHeaderBytes:], castagnoli)
}

// entryAt parses the tidwall/wal binary entry (uvarint length, then that
// many bytes) starting at data[off]. It returns the entry's frame and its
// total size, or ok=false when the length prefix is malformed or the entry
// runs past the end of data. A length prefix is malformed also when it is
// not in its shortest form (a multi-byte uvarint ending in a zero byte):
// tidwall/wal never writes one, so it can only be damage, for example a
// flipped continuation bit before a CRC that starts with a zero byte, and
// an entry then has exactly one encoding.
func entryAt(data []byte, off int) (frame []byte, entryBytes int, ok bool) {
	size, n := binary.Uvarint(data[off:])
	if n <= 0 || (n > 1 && data[off+n-1] == 0) || size > uint64(len(data)-off-n) {
		return nil, 0, false
	}
	end := off + n + int(size)
	return data[off+n : end], end - off, true
}

// entryBytes is the size tidwall/wal gives an entry holding frameLen bytes.
func entryBytes(frameLen int) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutUvarint(buf[:], uint64(frameLen)) + frameLen
}
