package bench

import (
	"fmt"
	"sync"
)

// violationsKeptMax bounds how many violation messages are kept; all are
// counted.
const violationsKeptMax = 200

// violations collects broken promises found during a run or its audit. It is
// safe for concurrent use. Any violation makes flashbench exit non-zero.
type violations struct {
	mu       sync.Mutex
	count    int64
	messages []string
}

// addf records one violation.
func (v *violations) addf(format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.count++
	if len(v.messages) < violationsKeptMax {
		v.messages = append(v.messages, fmt.Sprintf(format, args...))
	}
}

// snapshot returns the number of violations and the kept messages.
func (v *violations) snapshot() (int64, []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.count, append([]string(nil), v.messages...)
}
