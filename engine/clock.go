package engine

import (
	"sync"
	"time"
)

// Clock is the engine's only source of time, injected so that tests control
// it. Replay never reads it: records carry their own timestamps.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the actors use.
type Timer interface {
	C() <-chan time.Time
	Reset(d time.Duration)
	Stop()
}

// SystemClock is the wall clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

func (SystemClock) NewTimer(d time.Duration) Timer { return sysTimer{time.NewTimer(d)} }

type sysTimer struct{ t *time.Timer }

func (s sysTimer) C() <-chan time.Time { return s.t.C }

// Reset follows Go 1.23 timer semantics: no stale value is delivered after it.
func (s sysTimer) Reset(d time.Duration) { s.t.Reset(d) }
func (s sysTimer) Stop()                 { s.t.Stop() }

// FakeClock is a manual clock for tests: time moves only in Advance, which
// fires every timer whose deadline it passes.
type FakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

// NewFakeClock starts a fake clock at start.
func NewFakeClock(start time.Time) *FakeClock { return &FakeClock{now: start} }

func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and fires the timers that are due.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	timers := append([]*fakeTimer(nil), c.timers...)
	c.mu.Unlock()
	for _, t := range timers {
		t.fireIfDue(now)
	}
}

func (c *FakeClock) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{clock: c, ch: make(chan time.Time, 1)}
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	t.Reset(d)
	return t
}

type fakeTimer struct {
	clock    *FakeClock
	ch       chan time.Time
	mu       sync.Mutex
	deadline time.Time
	armed    bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Reset(d time.Duration) {
	now := t.clock.Now()
	t.mu.Lock()
	t.deadline = now.Add(d)
	t.armed = true
	select { // drop a stale tick, as Go 1.23 timers do
	case <-t.ch:
	default:
	}
	t.mu.Unlock()
	t.fireIfDue(now)
}

func (t *fakeTimer) Stop() {
	t.mu.Lock()
	t.armed = false
	t.mu.Unlock()
}

func (t *fakeTimer) fireIfDue(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.armed || now.Before(t.deadline) {
		return
	}
	t.armed = false
	select {
	case t.ch <- now:
	default:
	}
}
