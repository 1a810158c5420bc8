package wal_test

import (
	"fmt"
	"os"

	"github.com/flashsale/flashsale/wal"
)

// The life of a log: open (repairing a torn tail), replay into fresh state,
// start the committer, submit, close.
func Example() {
	dir, _ := os.MkdirTemp("", "wal-example-")
	defer os.RemoveAll(dir)

	for run := 1; run <= 2; run++ {
		l, err := wal.Open(dir, wal.Options{})
		if err != nil {
			fmt.Println(err) // a *wal.CorruptError names segment and index
			return
		}
		replayed := 0
		if err := l.Replay(func(rec []byte) error { replayed++; return nil }); err != nil {
			fmt.Println(err)
			return
		}
		l.Start()
		acked := make(chan error, 1)
		l.Submit([][]byte{[]byte("hold 1"), []byte("hold 2")}, func(err error) { acked <- err })
		fmt.Printf("run %d: replayed %d, submit: %v, last index %d\n", run, replayed, <-acked, l.LastIndex())
		if err := l.Close(); err != nil {
			fmt.Println(err)
		}
	}
	// Output:
	// run 1: replayed 0, submit: <nil>, last index 2
	// run 2: replayed 2, submit: <nil>, last index 4
}
