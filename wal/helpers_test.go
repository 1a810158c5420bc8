package wal

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// testRecordBytes is the size of the records most tests write: 64 bytes of
// record, 68 of frame, 69 of tidwall entry.
const testRecordBytes = 64

// testEntryBytes is the on-disk size of one test record.
const testEntryBytes = 1 + frameHeaderBytes + testRecordBytes

// testRecord is the i-th record of a test log: unique, 64 bytes.
func testRecord(i int) []byte {
	r := make([]byte, testRecordBytes)
	copy(r, fmt.Sprintf("record %08d ", i))
	for j := 16; j < len(r); j++ {
		r[j] = byte('a' + (i+j)%26)
	}
	return r
}

// testRecords returns testRecord(from) .. testRecord(to-1).
func testRecords(from, to int) [][]byte {
	var out [][]byte
	for i := from; i < to; i++ {
		out = append(out, testRecord(i))
	}
	return out
}

// mustOpen opens dir or fails the test.
func mustOpen(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return l
}

// submitWait submits records and waits for done, returning its error.
func submitWait(l *Log, records [][]byte) error {
	ch := make(chan error, 1)
	l.Submit(records, func(err error) { ch <- err })
	return <-ch
}

// writeLog creates a log in dir holding records, one submission each, and
// closes it.
func writeLog(t testing.TB, dir string, opts Options, records [][]byte) {
	t.Helper()
	l := mustOpen(t, dir, opts)
	l.Start()
	for i, r := range records {
		if err := submitWait(l, [][]byte{r}); err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// replayAll returns copies of every record Replay delivers.
func replayAll(t testing.TB, l *Log) [][]byte {
	t.Helper()
	var out [][]byte
	if err := l.Replay(func(rec []byte) error {
		out = append(out, bytes.Clone(rec))
		return nil
	}); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return out
}

// reopenRecords opens dir, replays it and closes it again.
func reopenRecords(t testing.TB, dir string, opts Options) [][]byte {
	t.Helper()
	l := mustOpen(t, dir, opts)
	defer l.Close()
	return replayAll(t, l)
}

// assertRecords fails unless got equals want record by record.
func assertRecords(t testing.TB, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d: got %q, want %q", i, got[i], want[i])
		}
	}
}

// segmentPaths lists the segment files of dir in log order.
func segmentPaths(t testing.TB, dir string) []string {
	t.Helper()
	segs, _, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range segs {
		out = append(out, s.path)
	}
	return out
}

// lastSegment is the path of dir's last segment file.
func lastSegment(t testing.TB, dir string) string {
	t.Helper()
	p := segmentPaths(t, dir)
	if len(p) == 0 {
		t.Fatalf("no segments in %s", dir)
	}
	return p[len(p)-1]
}

// entryOffsets returns the byte offset of every entry of a clean segment.
func entryOffsets(t testing.TB, path string) []int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int
	for off := 0; off < len(data); {
		_, n, ok := entryAt(data, off)
		if !ok {
			t.Fatalf("%s: bad entry at %d", path, off)
		}
		offs = append(offs, off)
		off += n
	}
	return offs
}

// copyDir copies the segment files of src into a fresh temporary directory.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// editFile rewrites the file at path with edit applied to its contents.
func editFile(t testing.TB, path string, edit func([]byte) []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, edit(data), 0o640); err != nil {
		t.Fatal(err)
	}
}
