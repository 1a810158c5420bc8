package crash

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/bench/serverproc"
)

// The mid-log test's shape.
const (
	midWorkers = 2
	midLoad    = 600 * time.Millisecond
	// midEntriesAfterMin is how many intact entries must follow the damaged
	// one, so that the damage is unmistakably in the middle.
	midEntriesAfterMin = 20
	// refuseTimeout bounds how long a server may take to refuse a damaged log.
	refuseTimeout = 10 * time.Second
)

// midDamage flips bits in one entry of a segment file.
type midDamage struct {
	name string
	// pick chooses the byte of e to damage.
	pick func(rng *rand.Rand, e walEntry) int64
}

var midDamages = []midDamage{
	{"bit flip in a record", func(rng *rand.Rand, e walEntry) int64 {
		return e.dataOffset + rng.Int63n(e.end-e.dataOffset)
	}},
	{"bit flip in a length prefix", func(_ *rand.Rand, e walEntry) int64 { return e.offset }},
}

// droppedRecordsRE finds the count of dropped records in the server's
// output, in the JSON log ("dropped_records":N) or in a console log.
var droppedRecordsRE = regexp.MustCompile(`dropped_records\W{1,3}(\d+)`)

// TestMidLogCorruption: a damaged entry with intact entries after it is not
// a torn write. The server must refuse to start with a non-zero exit and an
// error naming the segment file and the entry's index, and leave the log
// untouched. With --wal-truncate-corrupt it must start, say how many records
// it dropped (the damaged one and all after it), keep every acknowledged
// answer before the damage and the stock arithmetic; the cut must last
// (a plain restart after SIGTERM works and sees the same).
//
// The log is damaged once after a clean stop (SIGTERM, which leaves a
// snapshot covering the whole log) and once after kill -9 with no request
// in flight (no snapshot: the log alone holds the state).
func TestMidLogCorruption(t *testing.T) {
	bin := serverproc.Build(t)
	rng := rand.New(rand.NewSource(rngSeed(t)))
	for _, stop := range []struct {
		name string
		stop func(*serverproc.Server) int
	}{
		{"after SIGTERM", (*serverproc.Server).Term},
		{"after kill -9", func(s *serverproc.Server) int { s.Kill9(); return 0 }},
	} {
		t.Run(stop.name, func(t *testing.T) { midLogCorruption(t, bin, rng, stop.stop) })
	}
}

// midLogCorruption is TestMidLogCorruption with the server stopped by stop,
// which returns the exit code it expects to be 0.
func midLogCorruption(t *testing.T, bin string, rng *rand.Rand, stop func(*serverproc.Server) int) {
	r := startLoaded(t, bin, "m")
	dir, flags, s, seeded, l, c, ld := r.dir, r.flags, r.s, r.seeded, r.l, r.c, r.ld
	ctx, cancel := context.WithTimeout(context.Background(), midLoad)
	ld.run(ctx, midWorkers, rng.Int63())
	cancel()
	c.Close()
	if code := stop(s); code != 0 {
		t.Fatalf("exit code %d on stopping, want 0", code)
	}
	t.Logf("ledger: %s", l.summary())

	segment := seeded.segment
	entries := readEntries(t, dir, segment)
	var candidates []walEntry
	for i, e := range entries {
		if e.offset >= seeded.bytes && len(entries)-i-1 >= midEntriesAfterMin {
			candidates = append(candidates, e)
		}
	}
	if len(candidates) == 0 {
		t.Fatalf("segment %s: %d entries, none after the catalog with %d after it", segment, len(entries), midEntriesAfterMin)
	}
	last := lastIndex(t, dir)

	for i, d := range midDamages {
		t.Run(fmt.Sprintf("%d %s", i, d.name), func(t *testing.T) {
			e := candidates[rng.Intn(len(candidates)/2+1)] // early in the log
			vdir := t.TempDir()
			copyDir(t, dir, vdir)
			path := filepath.Join(walDir(vdir), segment)
			at := d.pick(rng, e)
			flipBits(t, path, at, byte(1+rng.Intn(255)))
			wantDropped := last - e.index + 1
			when := fmt.Sprintf("%s at byte %d (entry %d at byte %d of segment %s of a log up to index %d)",
				d.name, at, e.index, e.offset, segment, last)
			damaged, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}

			refused := serverproc.Launch(t, bin, vdir, flags...)
			code, err := refused.WaitExit(refuseTimeout)
			if err != nil {
				t.Fatalf("%s: the server did not refuse to start: %v; output:\n%s", when, err, refused.Output())
			}
			out := refused.Output()
			indexRE := regexp.MustCompile(`index\W{1,3}` + strconv.FormatUint(e.index, 10) + `\b`)
			if code == 0 || !strings.Contains(out, segment) || !indexRE.MatchString(out) {
				t.Errorf("%s: exit code %d, want non-zero with segment %s and index %d named; output:\n%s",
					when, code, segment, e.index, out)
			}
			t.Logf("refused with exit code %d: %s", code, lastLine(out))
			if after, err := os.ReadFile(path); err != nil || !bytes.Equal(after, damaged) {
				t.Errorf("%s: refusing to start changed segment %s (%d bytes before, %d after, %v)", when, segment, len(damaged), len(after), err)
			}

			s := serverproc.Start(t, bin, vdir, append(flags, "--wal-truncate-corrupt")...)
			m := droppedRecordsRE.FindStringSubmatch(s.Output())
			if m == nil || m[1] != strconv.FormatUint(wantDropped, 10) {
				t.Errorf("%s: --wal-truncate-corrupt should report %d dropped records; output:\n%s", when, wantDropped, s.Output())
			}
			survives := survivesBefore(damagePoint{segment: segment, offset: e.offset})
			t.Logf("%s: %s", when, l.mustSurviveSummary(survives))
			c := newClient(s.URL())
			verify(t, when+", --wal-truncate-corrupt", c, l, catalog, survives)
			c.Close()
			if code := s.Term(); code != 0 {
				t.Fatalf("%s: exit code %d after SIGTERM, want 0", when, code)
			}
			s = serverproc.Start(t, bin, vdir, flags...)
			c = newClient(s.URL())
			defer c.Close()
			verify(t, when+", plain restart after the cut", c, l, catalog, survives)
		})
	}
}

// lastIndex is the index of the last entry of the log in dataDir.
func lastIndex(t *testing.T, dataDir string) uint64 {
	t.Helper()
	names, err := segmentNames(dataDir)
	if err != nil || len(names) == 0 {
		t.Fatalf("segments of %s: %v %v", dataDir, names, err)
	}
	newest := names[len(names)-1]
	entries := readEntries(t, dataDir, newest)
	if len(entries) == 0 {
		first, _ := strconv.ParseUint(newest, 10, 64)
		return first - 1
	}
	return entries[len(entries)-1].index
}

// flipBits XORs the byte at offset of the file at path with mask (non-zero).
func flipBits(t *testing.T, path string, offset int64, mask byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, offset); err != nil {
		t.Fatal(err)
	}
	b[0] ^= mask
	if _, err := f.WriteAt(b, offset); err != nil {
		t.Fatal(err)
	}
}

// lastLine is the last non-empty line of out.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}
