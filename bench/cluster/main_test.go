package cluster

import (
	"os"
	"testing"

	"github.com/flashsale/flashsale/bench/serverproc"
)

func TestMain(m *testing.M) {
	code := m.Run()
	serverproc.Cleanup()
	os.Exit(code)
}
