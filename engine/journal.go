package engine

import (
	"errors"
	"sync"
)

// Journal makes records durable. The write-ahead log implements it; tests
// use MemJournal.
//
// Submit queues records as one submission and calls done exactly once, after
// the records are durable (done(nil)) or could not be made durable (done(err)).
// Submissions become durable, and their done functions run, in the order
// Submit was called: the engine releases an answer that depends on earlier
// records only after those records are durable, by relying on that order. A
// submission with no records is legal; its done runs once everything before
// it is durable. The caller does not modify the record slices until done
// runs. done must not block.
//
// A failure is permanent: once a submission failed, every later one fails
// too, and nothing submitted after the failure is ever made durable. The
// engine relies on it (it refuses every command from the first failure
// on), and so does the binary, which stops the process.
type Journal interface {
	Submit(records [][]byte, done func(error))
}

// MemJournal is an in-memory Journal for tests: it keeps a copy of every
// record and acknowledges at once, or fails every submission once Fail has
// been called.
type MemJournal struct {
	mu      sync.Mutex
	records [][]byte
	err     error
}

// ErrJournalFailed is the error a failed MemJournal reports.
var ErrJournalFailed = errors.New("engine: journal failed")

func (j *MemJournal) Submit(records [][]byte, done func(error)) {
	j.mu.Lock()
	err := j.err
	if err == nil {
		for _, r := range records {
			j.records = append(j.records, append([]byte(nil), r...))
		}
	}
	j.mu.Unlock()
	done(err)
}

// Fail makes every later submission fail, as a log does after an fsync error.
func (j *MemJournal) Fail() {
	j.mu.Lock()
	j.err = ErrJournalFailed
	j.mu.Unlock()
}

// Records returns copies of the records submitted so far, in log order.
func (j *MemJournal) Records() [][]byte {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([][]byte, len(j.records))
	copy(out, j.records)
	return out
}

// Len is the number of records submitted so far.
func (j *MemJournal) Len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.records)
}
