package serverproc

import "sync"

// outputBytesMax is how much of a process's output a Server keeps: the most
// recent bytes, which say why it stopped.
const outputBytesMax = 1 << 20

// outputBuffer is a concurrency-safe sink for a process's stdout and stderr
// that keeps the last outputBytesMax bytes.
type outputBuffer struct {
	mu      sync.Mutex
	buf     []byte
	dropped bool // whether older output was discarded
}

func (b *outputBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > 2*outputBytesMax {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-outputBytesMax:]...)
		b.dropped = true
	}
	return len(p), nil
}

func (b *outputBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped {
		return "[earlier output dropped]\n" + string(b.buf)
	}
	return string(b.buf)
}
