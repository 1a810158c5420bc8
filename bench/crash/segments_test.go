package crash

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/flashsale/flashsale/bench/serverproc"
)

// The write-ahead log lives in <data dir>/wal as tidwall/wal segment files,
// each named by the log index of its first entry in 20 decimal digits. An
// entry is a uvarint length followed by that many bytes: a 4-byte CRC-32C,
// then the record.
const segmentNameDigits = 20

func walDir(dataDir string) string { return filepath.Join(dataDir, "wal") }

// segmentNames lists the segment files of the log in dataDir, oldest first.
func segmentNames(dataDir string) ([]string, error) {
	entries, err := os.ReadDir(walDir(dataDir))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if len(e.Name()) != segmentNameDigits || e.IsDir() {
			continue
		}
		if _, err := strconv.ParseUint(e.Name(), 10, 64); err == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// logEnd is the mark of the log's current end: the newest segment and its size.
func logEnd(dataDir string) (mark, error) {
	names, err := segmentNames(dataDir)
	if err != nil {
		return mark{}, err
	}
	if len(names) == 0 {
		return mark{}, fmt.Errorf("no segment files in %s", walDir(dataDir))
	}
	newest := names[len(names)-1]
	fi, err := os.Stat(filepath.Join(walDir(dataDir), newest))
	if err != nil {
		return mark{}, err
	}
	return mark{segment: newest, bytes: fi.Size()}, nil
}

// afterEverything is a mark later than any damage: an answer marked with it
// need not survive.
var afterEverything = mark{segment: "\xff"}

// logEndMarker returns a load.markNow for the log in dataDir. A failure to
// stat the log is a problem in l, and the answer is marked afterEverything.
func logEndMarker(dataDir string, l *ledger) func() mark {
	return func() mark {
		m, err := logEnd(dataDir)
		if err != nil {
			l.problem("marking an answer: %v", err)
			return afterEverything
		}
		return m
	}
}

// walEntry is one tidwall/wal entry of a segment file.
type walEntry struct {
	index      uint64 // log index
	offset     int64  // first byte of its length prefix
	dataOffset int64  // first byte of its frame (the CRC)
	end        int64  // one past its last byte
}

// readEntries parses the entries of a segment file; it fails on an
// incomplete entry.
func readEntries(t *testing.T, dataDir, segment string) []walEntry {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(walDir(dataDir), segment))
	if err != nil {
		t.Fatal(err)
	}
	first, err := strconv.ParseUint(segment, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	var entries []walEntry
	for off := 0; off < len(b); {
		n, w := binary.Uvarint(b[off:])
		if w <= 0 || uint64(len(b)-off-w) < n {
			t.Fatalf("segment %s: incomplete entry at byte %d", segment, off)
		}
		end := off + w + int(n)
		entries = append(entries, walEntry{index: first + uint64(len(entries)), offset: int64(off), dataOffset: int64(off + w), end: int64(end)})
		off = end
	}
	return entries
}

// copyDir copies the regular files of src, recursively, into dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		return copyFile(path, target)
	})
	if err != nil {
		t.Fatalf("copying %s to %s: %v", src, dst, err)
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// mustLogEnd is logEnd for tests: an error ends the test.
func mustLogEnd(t *testing.T, dataDir string) mark {
	t.Helper()
	m, err := logEnd(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// loadedServer is a server on a fresh data directory, where its log ended
// after the seed catalog, and a load that records its answers in a ledger,
// ready to run against it.
type loadedServer struct {
	dir    string
	flags  []string
	s      *serverproc.Server
	seeded mark
	l      *ledger
	c      *client
	ld     *load
}

// startLoaded starts a server for a crash test; tag names its keys.
func startLoaded(t *testing.T, bin, tag string) *loadedServer {
	t.Helper()
	r := &loadedServer{dir: t.TempDir(), flags: serverFlags(t), l: newLedger()}
	r.s = serverproc.Start(t, bin, r.dir, r.flags...)
	r.seeded = mustLogEnd(t, r.dir)
	r.c = newClient(r.s.URL())
	r.ld = &load{c: r.c, l: r.l, products: catalog, tag: tag, markNow: logEndMarker(r.dir, r.l)}
	return r
}
