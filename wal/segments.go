package wal

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// segmentNameBytes is the length of a tidwall/wal segment file name: the
// segment's first index as 20 zero-padded decimal digits.
const segmentNameBytes = 20

// segmentFile is one segment file of the log.
type segmentFile struct {
	name  string // base name, e.g. "00000000000000000001"
	path  string
	start uint64 // index of the segment's first entry
}

// listSegments returns the segment files in dir in log order. It also
// reports whether tidwall/wal left START or END files behind from an
// interrupted truncation, which only tidwall/wal's Open cleans up.
func listSegments(dir string) (segs []segmentFile, unfinished bool, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, false, err
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || len(name) < segmentNameBytes {
			continue
		}
		start, err := strconv.ParseUint(name[:segmentNameBytes], 10, 64)
		if err != nil || start == 0 {
			continue // tidwall/wal ignores such files too
		}
		switch suffix := name[segmentNameBytes:]; suffix {
		case "":
			segs = append(segs, segmentFile{name: name, path: filepath.Join(dir, name), start: start})
		case ".START", ".END":
			unfinished = true
		}
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].name < segs[j].name })
	return segs, unfinished, nil
}

// segmentName is tidwall/wal's file name for a segment starting at index.
func segmentName(index uint64) string {
	return fmt.Sprintf("%020d", index)
}

// readFileInto reads the whole file at path into buf (grown as needed) and
// returns the filled slice. Reusing buf keeps replay from allocating one
// segment-sized buffer per segment.
func readFileInto(buf []byte, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf[:0], err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return buf[:0], err
	}
	size := int(fi.Size())
	if cap(buf) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	n, err := io.ReadFull(f, buf)
	if err != nil {
		return buf[:n], fmt.Errorf("wal: reading %s: %w", path, err)
	}
	return buf, nil
}

// syncDir fsyncs a directory so that file creations, renames and removals
// in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
