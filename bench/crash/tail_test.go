package crash

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flashsale/flashsale/bench/serverproc"
)

// The damaged-tail test's shape.
const (
	tailWorkers     = 4
	tailLoad        = 800 * time.Millisecond
	garbageBytesMax = 4096
	zeroBlockBytes  = 4096 // what a file system can leave after a crash: whole zeroed blocks
)

// tailDamage damages the end of a segment file the way a crash can.
type tailDamage struct {
	name string
	// apply damages the file at path, of size bytes, somewhere at or after
	// byte from, and returns the first damaged byte.
	apply func(t *testing.T, rng *rand.Rand, path string, size, from int64) int64
}

var tailDamages = []tailDamage{
	{"cut", cutAt},
	{"cut", cutAt},
	{"cut and garbage", func(t *testing.T, rng *rand.Rand, path string, size, from int64) int64 {
		off := cutAt(t, rng, path, size, from)
		appendBytes(t, path, randomBytes(rng, 1+rng.Intn(garbageBytesMax)))
		return off
	}},
	{"cut and garbage", func(t *testing.T, rng *rand.Rand, path string, size, from int64) int64 {
		off := cutAt(t, rng, path, size, from)
		appendBytes(t, path, randomBytes(rng, 1+rng.Intn(garbageBytesMax)))
		return off
	}},
	{"zero-filled end", zeroFillEnd},
	{"zero-filled end", zeroFillEnd},
	{"zero block appended", func(t *testing.T, _ *rand.Rand, path string, size, _ int64) int64 {
		appendBytes(t, path, make([]byte, zeroBlockBytes))
		return size
	}},
	{"garbage appended", func(t *testing.T, rng *rand.Rand, path string, size, _ int64) int64 {
		appendBytes(t, path, randomBytes(rng, 1+rng.Intn(garbageBytesMax)))
		return size
	}},
}

// TestDamagedTail: after a kill -9 under load, the newest segment file is
// cut at a random offset, cut and followed by garbage, zero-filled from a
// random offset to its end, or grown by zeros or garbage. Each time the
// server must start, keep every acknowledged answer whose record lies before
// the damage, and keep the stock arithmetic; the repair must last (a second
// restart after SIGTERM sees the same).
func TestDamagedTail(t *testing.T) {
	bin := serverproc.Build(t)
	rng := rand.New(rand.NewSource(rngSeed(t)))
	r := startLoaded(t, bin, "t")
	dir, flags, s, seeded, l, c, ld := r.dir, r.flags, r.s, r.seeded, r.l, r.c, r.ld
	loadAndKill(s, ld, tailWorkers, tailLoad, rng.Int63())
	c.Close()
	end := mustLogEnd(t, dir)
	t.Logf("log ends at byte %d of segment %s after kill -9; ledger: %s", end.bytes, end.segment, l.summary())
	from := int64(0) // damage only what came after the seeded catalog
	if seeded.segment == end.segment {
		from = seeded.bytes
	}

	for i, d := range tailDamages {
		t.Run(fmt.Sprintf("%d %s", i, d.name), func(t *testing.T) {
			vdir := t.TempDir()
			copyDir(t, dir, vdir)
			off := d.apply(t, rng, filepath.Join(walDir(vdir), end.segment), end.bytes, from)
			when := fmt.Sprintf("%s from byte %d of segment %s (%d bytes)", d.name, off, end.segment, end.bytes)
			survives := survivesBefore(damagePoint{segment: end.segment, offset: off})

			t.Logf("%s: %s", when, l.mustSurviveSummary(survives))
			s := serverproc.Start(t, bin, vdir, flags...)
			c := newClient(s.URL())
			verify(t, when, c, l, catalog, survives)
			c.Close()
			if code := s.Term(); code != 0 {
				t.Fatalf("%s: exit code %d after SIGTERM, want 0", when, code)
			}
			s = serverproc.Start(t, bin, vdir, flags...)
			c = newClient(s.URL())
			defer c.Close()
			verify(t, when+", second restart", c, l, catalog, survives)
		})
	}
}

// cutAt truncates the file at a random offset in [from, size) and returns it.
func cutAt(t *testing.T, rng *rand.Rand, path string, size, from int64) int64 {
	off := randomOffset(rng, size, from)
	if err := os.Truncate(path, off); err != nil {
		t.Fatal(err)
	}
	return off
}

// zeroFillEnd overwrites the file with zeros from a random offset in
// [from, size) to its end and returns that offset.
func zeroFillEnd(t *testing.T, rng *rand.Rand, path string, size, from int64) int64 {
	off := randomOffset(rng, size, from)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, size-off), off); err != nil {
		t.Fatal(err)
	}
	return off
}

func randomOffset(rng *rand.Rand, size, from int64) int64 {
	if from >= size {
		return size
	}
	return from + rng.Int63n(size-from)
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	rng.Read(b)
	return b
}
