package cluster

import (
	"fmt"
	"os"
	"testing"

	"github.com/flashsale/flashsale/bench/apicheck"
	"github.com/flashsale/flashsale/bench/serverproc"
)

// contract holds every exchange of client.do to docs/openapi.yaml; the
// run fails after the tests if any broke it (the client has no *testing.T).
var contract apicheck.Tally

func TestMain(m *testing.M) {
	code := m.Run()
	serverproc.Cleanup()
	if !contract.Report(os.Stderr) && code == 0 {
		code = 1
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "docs/openapi.yaml: %d exchanges checked\n", contract.Checked())
	}
	os.Exit(code)
}
