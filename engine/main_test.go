package engine

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// test stops its engines (t.Cleanup(te.Stop)), and a stopped engine must
// leave no actor, janitor or journal waiter behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
