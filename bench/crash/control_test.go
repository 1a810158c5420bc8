package crash

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/flashsale/flashsale/bench/serverproc"
)

// errorLog is a reporter that keeps what it is told.
type errorLog struct {
	mu     sync.Mutex
	errors []string
}

func (e *errorLog) Helper() {}

func (e *errorLog) Errorf(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errors = append(e.errors, fmt.Sprintf(format, args...))
}

// count is the number of errors that contain substr.
func (e *errorLog) count(substr string) int {
	n := 0
	for _, s := range e.errors {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

// TestVerifyDetectsBrokenPromises is the control of the crash tests: the
// verifier is not vacuous. On an intact log it finds nothing; when a log
// lost acknowledged records it reports them gone; when an answer differs
// from the one recorded it reports the replay.
func TestVerifyDetectsBrokenPromises(t *testing.T) {
	bin := serverproc.Build(t)
	rng := rand.New(rand.NewSource(rngSeed(t)))
	r := startLoaded(t, bin, "v")
	dir, flags, s, seeded, l, c, ld := r.dir, r.flags, r.s, r.seeded, r.l, r.c, r.ld
	loadAndKill(s, ld, tailWorkers, midLoad, rng.Int63())
	c.Close()
	end := mustLogEnd(t, dir)
	if end.segment != seeded.segment || end.bytes <= seeded.bytes {
		t.Fatalf("the load wrote nothing after the catalog: %+v, %+v", seeded, end)
	}

	// Lost acknowledged records: the log cut half way, checked as if nothing was lost.
	lost := t.TempDir()
	copyDir(t, dir, lost)
	cut := seeded.bytes + (end.bytes-seeded.bytes)/2
	if err := os.Truncate(filepath.Join(walDir(lost), end.segment), cut); err != nil {
		t.Fatal(err)
	}
	gone := &errorLog{}
	withLoss := serverproc.Start(t, bin, lost, flags...)
	lc := newClient(withLoss.URL())
	verify(gone, "control: half the log cut", lc, l, catalog, allSurvive)
	lc.Close()
	if gone.count("is gone") == 0 {
		t.Errorf("the verifier did not notice that half the log is missing; it said: %q", gone.errors)
	}

	// The intact log passes, and a recorded answer that differs is caught.
	intact := serverproc.Start(t, bin, dir, flags...)
	ic := newClient(intact.URL())
	defer ic.Close()
	clean := &errorLog{}
	verify(clean, "control: intact log", ic, l, catalog, allSurvive)
	if len(clean.errors) != 0 {
		t.Errorf("the verifier complains about an intact log: %q", clean.errors)
	}
	if len(l.keyed) == 0 {
		t.Fatal("no keyed answers recorded")
	}
	l.keyed[0].first.Body = append([]byte(" "), l.keyed[0].first.Body...)
	replay := &errorLog{}
	verify(replay, "control: a recorded answer altered", ic, l, catalog, allSurvive)
	if len(replay.errors) != 1 || replay.count("Idempotency-Key") != 1 {
		t.Errorf("want one replay mismatch, got %q", replay.errors)
	}
}
