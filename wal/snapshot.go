package wal

// Snapshot files: durable storage of an opaque state blob tagged with the
// log index it covers, so that a restart loads the newest snapshot and
// replays only the log after it. SaveSnapshot documents the file format.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// SnapshotDirName is the directory under the data directory that holds
// snapshots, next to the log's directory.
const SnapshotDirName = "snapshots"

// Snapshot file layout and names; SaveSnapshot documents the format.
const (
	snapMagic       = "FSNAP001"
	snapHeaderBytes = len(snapMagic) + 8 + 8 // magic, index, state length
	snapCRCBytes    = 4
	snapFileBytes   = snapHeaderBytes + snapCRCBytes // the file size minus the state's length

	snapPrefix    = "snap-"
	snapSuffix    = ".snap"
	snapTmpSuffix = ".tmp"
	snapBadSuffix = ".corrupt"
	snapNameLen   = len(snapPrefix) + segmentNameBytes + len(snapSuffix)

	// snapWriteBufBytes is the bufio.Writer size SaveSnapshotFrom streams
	// through: large enough that the state reaches the file in big writes.
	snapWriteBufBytes = 1 << 20

	// snapKeep is how many snapshots SaveSnapshot leaves: the new one and
	// the newest previous one, so a damaged newest can fall back.
	snapKeep = 2
)

// SnapshotCorruptError describes a snapshot file that LoadSnapshot skipped
// because it failed its checks (torn, truncated, bit-flipped, wrong magic,
// or an index that differs from its name).
type SnapshotCorruptError struct {
	Path   string // the snapshot file
	Reason string // what is wrong with it

	// SetAside is where LoadSnapshot moved the file (Path with the suffix
	// ".corrupt" instead of ".snap") so that it no longer counts as a
	// snapshot; empty if it was not moved, and then SetAsideErr says why.
	SetAside    string
	SetAsideErr error
}

func (e *SnapshotCorruptError) Error() string {
	msg := fmt.Sprintf("wal: corrupt snapshot %s: %s", e.Path, e.Reason)
	switch {
	case e.SetAside != "":
		msg += "; moved to " + e.SetAside
	case e.SetAsideErr != nil:
		msg += "; could not move it aside: " + e.SetAsideErr.Error()
	}
	return msg
}

// SnapshotDir is where snapshots live: <dataDir>/snapshots, separate from
// the log's directory <dataDir>/wal.
func SnapshotDir(dataDir string) string {
	return filepath.Join(dataDir, SnapshotDirName)
}

// snapshotName is the file name of the snapshot at index.
func snapshotName(index uint64) string {
	return snapPrefix + segmentName(index) + snapSuffix
}

// parseSnapshotName returns the index named by a snapshot file name
// (ok=false for any other name, including temporary files).
func parseSnapshotName(name string) (index uint64, ok bool) {
	if len(name) != snapNameLen || !strings.HasPrefix(name, snapPrefix) || !strings.HasSuffix(name, snapSuffix) {
		return 0, false
	}
	digits := name[len(snapPrefix) : len(snapPrefix)+segmentNameBytes]
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	index, err := strconv.ParseUint(digits, 10, 64)
	return index, err == nil
}

// SaveSnapshot durably stores state as the state covering the log up to and
// including index, in dir (created if missing). It writes
// snap-<index>.tmp, fsyncs it, renames it to snap-<index>.snap (replacing a
// snapshot of the same index), fsyncs dir, and then removes every snapshot
// with a lower index except the newest of them, so that two remain: a
// damaged newest one can fall back to the previous one. Snapshots with a
// higher index than index are left alone, and so are files that are not
// snapshots, such as the .corrupt files LoadSnapshot sets aside. <index>
// is the index as 20 zero-padded decimal digits.
//
// When SaveSnapshot returns nil the snapshot is durable. On error it may
// leave a .tmp file, which LoadSnapshot removes, but it never leaves a
// partial .snap file, and the previous snapshots are intact. It must not run
// concurrently with another SaveSnapshot or a LoadSnapshot on the same dir.
//
// A snapshot file holds, in order:
//
//	magic         8 bytes  "FSNAP001"
//	index         8 bytes  little-endian
//	state length  8 bytes  little-endian
//	state         that many bytes, opaque to this package
//	checksum      4 bytes  CRC-32C (Castagnoli) of all the bytes before it, little-endian
//
// and nothing else: a shorter file (torn write), a longer one (trailing
// bytes), a bad magic, a checksum mismatch or an index that differs from
// the file name's make the snapshot corrupt.
func SaveSnapshot(dir string, index uint64, state []byte) error {
	// Writes of one buffer's size: a single write(2) of a 100 MB state made
	// the save (write and fsync) about 3x slower on the development machine.
	return SaveSnapshotFrom(dir, index, func(w io.Writer) error {
		for rest := state; len(rest) > 0; {
			n := min(len(rest), snapWriteBufBytes)
			if _, err := w.Write(rest[:n]); err != nil {
				return err
			}
			rest = rest[n:]
		}
		return nil
	})
}

// SaveSnapshotFrom is SaveSnapshot with the state streamed: write is called
// once and writes the state to w (buffered; w is valid only during the
// call). The checksum is computed as the bytes go by, so the state need
// never be in memory as a whole. An error from write aborts the save,
// removes the temporary file and is returned wrapped.
func SaveSnapshotFrom(dir string, index uint64, write func(w io.Writer) error) error {
	if err := makeSnapshotDir(dir); err != nil {
		return err
	}
	tmp := filepath.Join(dir, snapPrefix+segmentName(index)+snapTmpSuffix)
	if err := writeSnapshotFile(tmp, index, write); err != nil {
		os.Remove(tmp)
		return err
	}
	final := filepath.Join(dir, snapshotName(index))
	if err := snapStep("rename", tmp, func() error { return os.Rename(tmp, final) }); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("wal: saving snapshot: %w", err)
	}
	if err := snapStep("sync dir", dir, func() error { return syncDir(dir) }); err != nil {
		return fmt.Errorf("wal: saving snapshot %s: syncing its directory: %w", final, err)
	}
	return pruneSnapshots(dir, index)
}

// makeSnapshotDir creates dir if it is missing and then fsyncs its parent,
// so that the directory entry of a first snapshot is as durable as the
// snapshot itself.
func makeSnapshotDir(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("wal: snapshot directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("wal: snapshot directory: %w", err)
	}
	parent := filepath.Dir(dir)
	if err := snapStep("sync dir", parent, func() error { return syncDir(parent) }); err != nil {
		return fmt.Errorf("wal: snapshot directory: syncing its parent: %w", err)
	}
	return nil
}

// writeSnapshotFile creates path and writes a complete snapshot to it:
// room for the header, the state streamed through a buffer and the
// checksum, then the header in place once the state's length is known; then
// it fsyncs and closes the file.
func writeSnapshotFile(path string, index uint64, write func(w io.Writer) error) (err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("wal: saving snapshot: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("wal: saving snapshot %s: %w", path, cerr)
		}
	}()
	bw := bufio.NewWriterSize(f, snapWriteBufBytes)
	var header [snapHeaderBytes]byte
	if _, err := bw.Write(header[:]); err != nil { // placeholder, rewritten below
		return fmt.Errorf("wal: saving snapshot %s: %w", path, err)
	}
	sw := &crcWriter{w: bw}
	if err := write(sw); err != nil {
		return fmt.Errorf("wal: saving snapshot %s: writing the state: %w", path, err)
	}
	if sw.err != nil { // write swallowed an error of ours
		return fmt.Errorf("wal: saving snapshot %s: %w", path, sw.err)
	}
	copy(header[:], snapMagic)
	binary.LittleEndian.PutUint64(header[len(snapMagic):], index)
	binary.LittleEndian.PutUint64(header[len(snapMagic)+8:], sw.n)
	sum := crc32Combine(crc32.Checksum(header[:], castagnoli), sw.crc, sw.n)
	var trailer [snapCRCBytes]byte
	binary.LittleEndian.PutUint32(trailer[:], sum)
	if _, err := bw.Write(trailer[:]); err != nil {
		return fmt.Errorf("wal: saving snapshot %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("wal: saving snapshot %s: %w", path, err)
	}
	if _, err := f.WriteAt(header[:], 0); err != nil {
		return fmt.Errorf("wal: saving snapshot %s: %w", path, err)
	}
	if err := snapStep("sync file", path, f.Sync); err != nil {
		return fmt.Errorf("wal: saving snapshot %s: fsync: %w", path, err)
	}
	return nil
}

// snapshotStepHook, for tests only, is called before each durability step
// of a save ("sync file", "rename", "sync dir") with the path it acts on;
// an error it returns fails the step without running it.
var snapshotStepHook func(step, path string) error

// snapStep runs one durability step of a save through snapshotStepHook.
func snapStep(step, path string, do func() error) error {
	if snapshotStepHook != nil {
		if err := snapshotStepHook(step, path); err != nil {
			return err
		}
	}
	return do()
}

// crcWriter passes bytes on to w, counting them and keeping their CRC-32C.
// Its first error sticks.
type crcWriter struct {
	w   io.Writer
	n   uint64
	crc uint32
	err error
}

func (c *crcWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.crc = crc32.Update(c.crc, castagnoli, p[:n])
	c.n += uint64(n)
	c.err = err
	return n, err
}

// snapshotFile is a snapshot file found in a snapshot directory.
type snapshotFile struct {
	index uint64
	path  string
}

// listSnapshots returns the snapshot files in dir, newest (highest index)
// first, and the paths of leftover temporary files.
func listSnapshots(dir string) (snaps []snapshotFile, tmps []string, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		name := e.Name()
		if index, ok := parseSnapshotName(name); ok {
			snaps = append(snaps, snapshotFile{index: index, path: filepath.Join(dir, name)})
		} else if strings.HasPrefix(name, snapPrefix) && strings.HasSuffix(name, snapTmpSuffix) {
			tmps = append(tmps, filepath.Join(dir, name))
		}
	}
	sort.Slice(snaps, func(i, j int) bool { return snaps[i].index > snaps[j].index })
	return snaps, tmps, nil
}

// pruneSnapshots removes the snapshots below index except the newest of
// them. Removals need no directory fsync: a removal lost to a crash leaves
// an old snapshot behind, which the next save removes.
func pruneSnapshots(dir string, index uint64) error {
	snaps, _, err := listSnapshots(dir)
	if err != nil {
		return fmt.Errorf("wal: pruning snapshots: %w", err)
	}
	kept := 0
	for _, s := range snaps {
		if s.index > index {
			continue
		}
		if kept++; kept <= snapKeep {
			continue
		}
		if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("wal: pruning snapshots: %w", err)
		}
	}
	return nil
}

// LoadSnapshot returns the newest snapshot in dir (highest index) whose
// checks pass: the state and the log index it covers, with ok=true.
// Snapshots newer than that one failed their checks; each is reported in
// skipped as a *SnapshotCorruptError, for the caller to log, and renamed
// from snap-<index>.snap to snap-<index>.corrupt: kept for inspection (never
// removed by this package), but no longer a snapshot, so that the next
// SaveSnapshot keeps the valid one loaded here as its fallback rather than
// the corrupt one. With no valid snapshot, or no dir, ok is false. Leftover
// temporary files of interrupted saves are removed.
//
// err is for I/O failures other than a missing dir or file (permission
// denied, a read error, dir not a directory); it leaves the outcome
// unknown, and the caller should not start as if there were no snapshot.
//
// Memory use is bounded by the size of the snapshot files: a declared state
// length is checked against the file's size before anything is allocated.
//
// Falling back to an older snapshot only helps if the log still holds the
// records after it. So after saving a snapshot, truncate the log's front to
// just after the previous snapshot (TruncateFront(prev+1)), not to just
// after the one just saved. After loading a snapshot at index N, check that
// the log's FirstIndex() <= N+1 before replaying from N+1; with ok=false,
// check that FirstIndex() == 1: otherwise records are missing and the state
// cannot be rebuilt.
func LoadSnapshot(dir string) (index uint64, state []byte, ok bool, skipped []error, err error) {
	snaps, tmps, err := listSnapshots(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil, false, nil, nil
	}
	if err != nil {
		return 0, nil, false, nil, fmt.Errorf("wal: loading snapshot: %w", err)
	}
	for _, tmp := range tmps {
		if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, nil, false, nil, fmt.Errorf("wal: removing a leftover snapshot file: %w", err)
		}
	}
	for _, s := range snaps {
		state, err := readSnapshotFile(s)
		var corrupt *SnapshotCorruptError
		switch {
		case err == nil:
			return s.index, state, true, skipped, nil
		case errors.As(err, &corrupt):
			setAside(corrupt)
			skipped = append(skipped, err)
		case errors.Is(err, fs.ErrNotExist):
			// removed since the listing; nothing to load or report
		default:
			return 0, nil, false, skipped, fmt.Errorf("wal: loading snapshot %s: %w", s.path, err)
		}
	}
	return 0, nil, false, skipped, nil
}

// setAside renames the corrupt snapshot file of e to its .corrupt name and
// records the outcome in e. A failure is not fatal: the file stays a
// snapshot, and the next load skips it again.
func setAside(e *SnapshotCorruptError) {
	to := strings.TrimSuffix(e.Path, snapSuffix) + snapBadSuffix
	if err := os.Rename(e.Path, to); err != nil {
		e.SetAsideErr = err
		return
	}
	e.SetAside = to
}

// readSnapshotFile reads and checks the snapshot file s. It returns a
// *SnapshotCorruptError when the file fails its checks, and other errors
// for I/O failures.
func readSnapshotFile(s snapshotFile) ([]byte, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (mode %v)", fi.Mode())
	}
	index, state, err := decodeSnapshot(f, fi.Size())
	if err != nil {
		var cerr *SnapshotCorruptError
		if errors.As(err, &cerr) {
			cerr.Path = s.path
		}
		return nil, err
	}
	if index != s.index {
		return nil, &SnapshotCorruptError{Path: s.path, Reason: fmt.Sprintf(
			"its header says index %d but its name says %d", index, s.index)}
	}
	return state, nil
}

// decodeSnapshot reads a snapshot file of size bytes from r and checks it.
// It allocates the state only once its declared length matches size, so
// memory use is bounded by size. A file that fails its checks, including
// one shorter than size (it changed while being read), yields a
// *SnapshotCorruptError without a Path; a read error is returned as is.
func decodeSnapshot(r io.Reader, size int64) (index uint64, state []byte, err error) {
	corrupt := func(format string, args ...any) error {
		return &SnapshotCorruptError{Reason: fmt.Sprintf(format, args...)}
	}
	if size < int64(snapFileBytes) {
		return 0, nil, corrupt("file is %d bytes, shorter than the %d of an empty snapshot", size, snapFileBytes)
	}
	var header [snapHeaderBytes]byte
	if err := readFull(r, header[:]); err != nil {
		return 0, nil, err
	}
	if string(header[:len(snapMagic)]) != snapMagic {
		return 0, nil, corrupt("bad magic %q, want %q", header[:len(snapMagic)], snapMagic)
	}
	index = binary.LittleEndian.Uint64(header[len(snapMagic):])
	stateLen := binary.LittleEndian.Uint64(header[len(snapMagic)+8:])
	if want := uint64(size) - uint64(snapFileBytes); stateLen != want {
		return 0, nil, corrupt("header declares %d state bytes but the file holds %d (torn write or trailing bytes)", stateLen, want)
	}
	buf := make([]byte, stateLen+snapCRCBytes)
	if err := readFull(r, buf); err != nil {
		return 0, nil, err
	}
	state, trailer := buf[:stateLen], buf[stateLen:]
	sum := crc32.Update(crc32.Checksum(header[:], castagnoli), castagnoli, state)
	if stored := binary.LittleEndian.Uint32(trailer); stored != sum {
		return 0, nil, corrupt("checksum mismatch: stored %08x, computed %08x", stored, sum)
	}
	return index, state, nil
}

// readFull is io.ReadFull that reports running out of bytes as corruption
// (the file is shorter than its size said).
func readFull(r io.Reader, buf []byte) error {
	_, err := io.ReadFull(r, buf)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &SnapshotCorruptError{Reason: "file ended early (it changed while being read)"}
	}
	return err
}

// crc32Combine returns the CRC-32C of A followed by B given crcA, the
// CRC-32C of A, and crcB, the CRC-32C of B, which is lenB bytes long (the
// method of zlib's crc32_combine). It lets SaveSnapshotFrom checksum the
// state as it streams by and only then the header, which holds the
// state's length but comes first.
func crc32Combine(crcA, crcB uint32, lenB uint64) uint32 {
	return gfMultModP(x8nModP(lenB), crcA) ^ crcB
}

// castagnoliReversed is the CRC-32C polynomial in reversed bit order, as
// hash/crc32 uses it.
const castagnoliReversed = crc32.Castagnoli

// gfMultModP multiplies a and b modulo the CRC polynomial, both in the
// reflected representation (bit 31 is x^0).
func gfMultModP(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
		}
		if b&1 != 0 {
			b = b>>1 ^ castagnoliReversed
		} else {
			b >>= 1
		}
	}
	return p
}

// x8nModP is x^(8n) modulo the CRC polynomial: the operator that shifts a
// CRC past n zero bytes.
func x8nModP(n uint64) uint32 {
	p := uint32(1) << 31  // x^0
	sq := uint32(1) << 23 // x^8: one byte
	for ; n != 0; n >>= 1 {
		if n&1 != 0 {
			p = gfMultModP(sq, p)
		}
		sq = gfMultModP(sq, sq)
	}
	return p
}

// SetAsideSnapshotsAfter renames every snapshot covering more of the log
// than index (the log's last record) to snap-<index>.ahead, so that a start
// falls back to one the log can continue. That happens only when records
// the snapshot holds were cut from the log: by --wal-truncate-corrupt, or by
// a machine crash under --fsync=never. It returns the files set aside.
func SetAsideSnapshotsAfter(dir string, index uint64) ([]string, error) {
	snaps, _, err := listSnapshots(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var aside []string
	for _, s := range snaps {
		if s.index <= index {
			continue
		}
		to := strings.TrimSuffix(s.path, snapSuffix) + ".ahead"
		if err := os.Rename(s.path, to); err != nil {
			return aside, err
		}
		aside = append(aside, to)
	}
	if len(aside) > 0 {
		if err := syncDir(dir); err != nil {
			return aside, err
		}
	}
	return aside, nil
}
