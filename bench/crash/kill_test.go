package crash

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/flashsale/flashsale/bench/serverproc"
)

// The kill -9 test's shape.
const (
	killCycles   = 6                       // kill -9 and restart this often on one data directory
	killWorkers  = 8                       // concurrent clients
	killAfterMin = 50 * time.Millisecond   // shortest load before a kill
	killAfterMax = 1500 * time.Millisecond // longest load before a kill
	// startKillAfterMax is the longest wait before killing a server that
	// is still starting, in half of the cycles.
	startKillAfterMax = 60 * time.Millisecond
	// termKillAfterMax is the longest wait between SIGTERM and SIGKILL, in
	// a third of the cycles.
	termKillAfterMax = 150 * time.Millisecond
	// killSnapshotEveryRecords is the server's --snapshot-every.
	killSnapshotEveryRecords = 500
)

// TestKill9UnderLoad: concurrent clients hold, order, pay and fail
// payments while the server is killed with SIGKILL at random moments and
// restarted on the same data directory, again and again. After every
// restart every acknowledged answer is still true (see verify): holds and
// orders exist with at least their acknowledged status, keyed answers replay
// byte for byte, nothing changed state without a request that could have
// changed it, and no product is oversold. Half the cycles also kill a
// server while it starts; a third kill it during its graceful shutdown. A final SIGTERM must exit 0 and lose nothing
// either.
func TestKill9UnderLoad(t *testing.T) {
	bin := serverproc.Build(t)
	rng := rand.New(rand.NewSource(rngSeed(t)))
	dir := t.TempDir()
	// Snapshots (and the log truncation after them) every few hundred
	// records, so that kills land during and between them too.
	flags := append(serverFlags(t), "--snapshot-every", strconv.Itoa(killSnapshotEveryRecords))
	l := newLedger()
	for cycle := 0; cycle < killCycles; cycle++ {
		if rng.Intn(2) == 0 {
			// A crash while starting: repairing, replaying, seeding, expiring.
			early := serverproc.Launch(t, bin, dir, flags...)
			time.Sleep(time.Duration(rng.Int63n(int64(startKillAfterMax))))
			early.Kill9()
			t.Logf("kill -9 while starting, before cycle %d", cycle+1)
		}
		s := serverproc.Start(t, bin, dir, flags...)
		c := newClient(s.URL())
		if cycle > 0 {
			verify(t, fmt.Sprintf("restart after kill -9 #%d", cycle), c, l, catalog, allSurvive)
		}
		ld := &load{c: c, l: l, products: catalog, tag: fmt.Sprintf("k%d", cycle)}
		loadSeed := rng.Int63()
		killAfter := killAfterMin + time.Duration(rng.Int63n(int64(killAfterMax-killAfterMin)))
		how := "kill -9"
		stop := s.Kill9
		if rng.Intn(3) == 0 {
			// A crash during a graceful shutdown: draining, final snapshot, closing the log.
			termToKill := time.Duration(rng.Int63n(int64(termKillAfterMax)))
			how = fmt.Sprintf("SIGTERM, then kill -9 %v later,", termToKill)
			stop = func() {
				s.Signal(syscall.SIGTERM)
				time.Sleep(termToKill)
				s.Kill9()
			}
		}
		loadAndStop(s, ld, killWorkers, killAfter, loadSeed, stop)
		c.Close()
		t.Logf("%s #%d after %v of load; ledger: %s", how, cycle+1, killAfter, l.summary())
		if t.Failed() {
			return
		}
	}

	logDataDir(t, dir)
	s := serverproc.Start(t, bin, dir, flags...)
	c := newClient(s.URL())
	verify(t, fmt.Sprintf("restart after kill -9 #%d", killCycles), c, l, catalog, allSurvive)
	c.Close()
	if code := s.Term(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0; output:\n%s", code, s.Output())
	}
	s = serverproc.Start(t, bin, dir, flags...)
	c = newClient(s.URL())
	defer c.Close()
	verify(t, "restart after SIGTERM", c, l, catalog, allSurvive)
}

// loadAndKill runs ld with workers clients, kills s with SIGKILL after
// killAfter while they are busy, and returns once every client stopped.
func loadAndKill(s *serverproc.Server, ld *load, workers int, killAfter time.Duration, rngSeed int64) {
	loadAndStop(s, ld, workers, killAfter, rngSeed, s.Kill9)
}

// loadAndStop is loadAndKill with the way to stop the server given.
func loadAndStop(s *serverproc.Server, ld *load, workers int, stopAfter time.Duration, rngSeed int64, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		ld.run(ctx, workers, rngSeed)
		close(done)
	}()
	time.Sleep(stopAfter)
	stop()
	cancel()
	<-done
}

// logDataDir logs the files of a data directory: segments and snapshots show
// whether snapshots were taken and the log's front dropped.
func logDataDir(t *testing.T, dataDir string) {
	var files []string
	_ = filepath.WalkDir(dataDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dataDir, path)
			files = append(files, rel)
		}
		return nil
	})
	t.Logf("data directory: %v", files)
}
