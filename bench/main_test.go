package bench

import (
	"os"
	"testing"
)

// TestMain lets the test binary double as the ceiling server child, and
// removes the real server build afterwards.
func TestMain(m *testing.M) {
	RunCeilingChildIfAsked()
	code := m.Run()
	removeRealServerBuild()
	os.Exit(code)
}
