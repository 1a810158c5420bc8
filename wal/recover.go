package wal

import (
	"fmt"
	"os"
)

// resyncBudgetBytes bounds the CRC work spent looking for intact frames past
// damage. Zero-filled and cut tails cost next to nothing; only a large tail
// of random garbage can exhaust it, and then Open errs on the safe side and
// reports corruption instead of guessing "torn tail".
var resyncBudgetBytes int64 = 1 << 30 // a variable so tests can shrink it

// damage locates the first entry of the log that fails its checks.
type damage struct {
	seg    int    // position in the segment list
	off    int    // byte offset of the entry in its segment
	index  uint64 // log index the entry has, or would have
	entry  bool   // an entry at off fails its checks (else the segment at off 0 does not start where it should)
	reason string
}

// resyncFrom is where the search for intact frames after dmg starts: past
// a damaged entry's first byte, or at the start of a misplaced segment.
func (d *damage) resyncFrom() int {
	if d.entry {
		return d.off + 1
	}
	return d.off
}

// findDamage checks every entry of every segment and returns the first
// damaged one (nil if none) and the index after the last entry.
func findDamage(segs []segmentFile, buf []byte) (dmg *damage, next uint64, _ []byte, err error) {
	for i, s := range segs {
		if i > 0 && s.start != next {
			return &damage{seg: i, index: next, reason: fmt.Sprintf(
				"segment starts at index %d but the previous one ends at index %d", s.start, next-1)}, next, buf, nil
		}
		if buf, err = readFileInto(buf, s.path); err != nil {
			return nil, 0, buf, err
		}
		next = s.start
		for off := 0; off < len(buf); next++ {
			frame, n, ok := entryAt(buf, off)
			switch {
			case !ok:
				return &damage{seg: i, off: off, index: next, entry: true, reason: "entry length prefix is malformed or runs past the end of the segment"}, next, buf, nil
			case len(frame) < frameBytesMin:
				return &damage{seg: i, off: off, index: next, entry: true, reason: "frame shorter than a checksum and one record byte"}, next, buf, nil
			case !frameIntact(frame):
				return &damage{seg: i, off: off, index: next, entry: true, reason: "record checksum mismatch"}, next, buf, nil
			}
			off += n
		}
	}
	return nil, next, buf, nil
}

// scanIntact looks for intact frames at every byte offset of data from
// from on. It stops at the first one unless countAll is set, in which case
// it follows entry boundaries from each intact frame and resynchronises
// after each damaged one. It charges the CRC work on non-intact candidates
// to budget and reports exhausted when that runs out.
func scanIntact(data []byte, from int, budget *int64, countAll bool) (count uint64, exhausted bool) {
	for off := from; off < len(data); {
		frame, n, ok := entryAt(data, off)
		if ok && len(frame) >= frameBytesMin {
			if frameIntact(frame) {
				count++
				if !countAll {
					return count, false
				}
				off += n
				continue
			}
			if *budget -= int64(len(frame)); *budget < 0 {
				return count, true
			}
		}
		off++
	}
	return count, false
}

// intactAfter counts intact frames after dmg in all segments (stopping at
// the first unless countAll).
func intactAfter(segs []segmentFile, dmg *damage, buf []byte, countAll bool) (count uint64, exhausted bool, _ []byte, err error) {
	budget := resyncBudgetBytes
	for i := dmg.seg; i < len(segs); i++ {
		if buf, err = readFileInto(buf, segs[i].path); err != nil {
			return 0, false, buf, err
		}
		from := 0
		if i == dmg.seg {
			from = dmg.resyncFrom()
		}
		c, ex := scanIntact(buf, from, &budget, countAll)
		count += c
		if ex || (c > 0 && !countAll) {
			return count, ex, buf, nil
		}
	}
	return count, false, buf, nil
}

// cutAt removes everything from dmg on: later segments (last first, so a
// crash mid-way leaves a prefix of the log), then the damaged segment's
// tail. A segment left empty is removed unless it is the first, so that
// segment names keep matching the indexes they hold. It returns the number
// of bytes removed.
func cutAt(dir string, segs []segmentFile, dmg *damage) (int64, error) {
	var cut int64
	for i := len(segs) - 1; i >= dmg.seg; i-- {
		fi, err := os.Stat(segs[i].path)
		if err != nil {
			return cut, err
		}
		if i > dmg.seg || (dmg.off == 0 && i > 0) {
			if err := os.Remove(segs[i].path); err != nil {
				return cut, err
			}
			cut += fi.Size()
			continue
		}
		if err := truncateSync(segs[i].path, int64(dmg.off)); err != nil {
			return cut, err
		}
		cut += fi.Size() - int64(dmg.off)
	}
	return cut, syncDir(dir)
}

// truncateSync cuts the file at path to size bytes and fsyncs it.
func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// recoverSegments checks the log in dir and repairs a torn tail (always) or
// mid-log corruption (only with truncateCorrupt). It returns what it did and
// the index after the last entry that remains (0 if there are no segments).
func recoverSegments(dir string, truncateCorrupt bool) (rec Recovery, next uint64, err error) {
	segs, _, err := listSegments(dir)
	if err != nil {
		return rec, 0, err
	}
	dmg, next, buf, err := findDamage(segs, nil)
	if err != nil || dmg == nil {
		return rec, next, err
	}
	found, exhausted, _, err := intactAfter(segs, dmg, buf, false)
	if err != nil {
		return rec, 0, err
	}
	intact := found > 0 || exhausted // an unfinished search cannot prove a torn tail
	if !intact {
		rec.TornBytes, err = cutAt(dir, segs, dmg)
		return rec, dmg.index, err
	}
	cerr := &CorruptError{Dir: dir, Segment: segs[dmg.seg].name, Index: dmg.index, Offset: int64(dmg.off), Reason: dmg.reason}
	if exhausted {
		cerr.Reason += " (the search for intact records after it gave up, so a torn write could not be proven)"
	}
	if !truncateCorrupt {
		return rec, 0, cerr
	}
	count, _, _, err := intactAfter(segs, dmg, nil, true)
	if err != nil {
		return rec, 0, err
	}
	rec.Corrupt = cerr
	rec.DroppedRecords = count
	if dmg.entry {
		rec.DroppedRecords++
	}
	rec.DroppedBytes, err = cutAt(dir, segs, dmg)
	return rec, dmg.index, err
}
