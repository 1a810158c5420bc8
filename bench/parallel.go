package bench

import (
	"sync"
	"sync/atomic"
)

// verifyParallelism is how many verification requests run at once.
const verifyParallelism = 16

// forEachParallel calls fn(w, i) for i in [0, n), spread over workers, and
// returns the first error (the remaining items still run).
func forEachParallel(workers []*worker, n int, fn func(w *worker, i int) error) error {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(w, i); err != nil {
					once.Do(func() { firstErr = err })
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}
