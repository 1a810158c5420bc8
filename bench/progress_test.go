package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for the progress goroutine and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestProgressLineShowsRateP99FailuresAndExtra(t *testing.T) {
	rec := newRecorder(1)
	for range 50 {
		rec.shard(0).record(EndpointHoldCreate, 201, nil, 2*time.Millisecond)
	}
	rec.shard(0).record(EndpointHoldCreate, 503, []byte("overloaded"), time.Millisecond)
	var out lockedBuffer
	stop := startTimeline(rec, 20*time.Millisecond, progressLine(&out, func() string { return "stock left 7" }))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "stock left 7") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	clearProgressLine(&out)
	got := out.String()
	for _, want := range []string{"req/s", "p99 2.00ms", "failures 1", "stock left 7", "\r\033[K"} {
		if !strings.Contains(got, want) {
			t.Errorf("progress output %q lacks %q", got, want)
		}
	}
	if !strings.HasSuffix(got, "\r\033[K") {
		t.Errorf("progress output %q does not end by clearing its line", got)
	}
}

func TestIsTerminalIsFalseForAFile(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("a regular file was taken for a terminal: the progress line would pollute it")
	}
}
