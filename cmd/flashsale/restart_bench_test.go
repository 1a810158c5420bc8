package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/wal"
	"github.com/rs/zerolog"
)

// benchHistory writes a data directory whose log holds about n records of
// flash sale history — waves of holds on a 1,000-unit product, each wave
// expiring 3 minutes later — and, if withSnapshot, a snapshot covering all
// of it. Most holds are older than the expired-hold retention by the end,
// as in a server that has run for days.
func benchHistory(b *testing.B, dir string, n int, withSnapshot bool) {
	clock := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	wlog, err := wal.Open(filepath.Join(dir, "wal"), wal.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	wlog.Start()
	cfg := engine.DefaultConfig()
	cfg.Clock = clock
	cfg.Journal = wlog
	cfg.OrderTTL = 0
	eng := engine.New(cfg)
	eng.Start()
	const stock = 1000
	if _, err := eng.Seed([]engine.ProductSpec{{ID: 1, Name: "Bench", PriceCents: 1, TotalStock: stock, MaxPerHold: 1}}); err != nil {
		b.Fatal(err)
	}
	const workers = 50
	for int(wlog.LastIndex()) < n {
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < stock/workers; i++ {
					if r := eng.CreateHold(1, 1, nil); r.Code != engine.OK {
						panic(r.Code.String())
					}
				}
			}()
		}
		wg.Wait()
		clock.Advance(3 * time.Minute)
		for p, _ := eng.Product(1); p.Available != stock; p, _ = eng.Product(1) {
			time.Sleep(100 * time.Microsecond)
		}
	}
	if withSnapshot {
		snaps := &snapshotter{eng: eng, wlog: wlog, dir: wal.SnapshotDir(dir), snapshotEvery: 1, log: zerolog.Nop()}
		if err := snaps.take(); err != nil {
			b.Fatal(err)
		}
	}
	eng.Stop()
	if err := wlog.Close(); err != nil {
		b.Fatal(err)
	}
}

var benchDirs sync.Map // "records/snapshot" → prepared data directory

// BenchmarkRestart measures a start's rebuild of the state: open the log
// (checking every frame), load the newest snapshot if any, replay the rest.
// Targets (issue 5): with snapshots, under 2 s after 10 million records;
// the log alone at >= 1,000,000 records/s.
//
//	go test -run='^$' -bench=Restart -benchtime=3x -timeout=30m ./cmd/flashsale/
func BenchmarkRestart(b *testing.B) {
	for _, n := range []int{1_000_000, 5_000_000, 10_000_000} {
		for _, withSnapshot := range []bool{false, true} {
			b.Run(fmt.Sprintf("records=%dM/snapshot=%v", n/1_000_000, withSnapshot), func(b *testing.B) {
				key := fmt.Sprint(n, withSnapshot)
				dirAny, ok := benchDirs.Load(key)
				if !ok {
					dir, err := os.MkdirTemp("", "flashsale-restart-bench-")
					if err != nil {
						b.Fatal(err)
					}
					benchHistory(b, dir, n, withSnapshot)
					benchDirs.Store(key, dir)
					dirAny = dir
				}
				dir := dirAny.(string)
				b.ResetTimer()
				var replayed int
				for i := 0; i < b.N; i++ {
					wlog, err := wal.Open(filepath.Join(dir, "wal"), wal.Options{})
					if err != nil {
						b.Fatal(err)
					}
					eng := engine.New(func() engine.Config { c := engine.DefaultConfig(); c.Journal = wlog; return c }())
					snaps := &snapshotter{eng: eng, wlog: wlog, dir: wal.SnapshotDir(dir), log: zerolog.Nop()}
					if replayed, err = snaps.load(); err != nil {
						b.Fatal(err)
					}
					if err := wlog.Close(); err != nil {
						b.Fatal(err)
					}
				}
				perRestart := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(perRestart, "s/restart")
				b.ReportMetric(float64(replayed), "records-replayed")
				if replayed > 0 {
					b.ReportMetric(float64(n)/perRestart, "log-records/s")
				}
			})
		}
	}
}
