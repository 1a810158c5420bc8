// Package serverproc runs the real server binary, cmd/flashsale, as a child
// process for tests that need the whole thing: crash tests, linearizability
// checks, end-to-end runs.
//
// A test builds the binary once (Build), starts it on a data directory
// (Start, or Launch and WaitHealthy for a server expected to fail), talks to
// it over HTTP at URL, and stops it with Kill9 or Term. Every process is
// killed when its test ends, and its output is logged if the test failed.
package serverproc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// serverPackage is the import path of the server binary.
const serverPackage = "github.com/flashsale/flashsale/cmd/flashsale"

var build struct {
	once sync.Once
	dir  string // temporary directory holding the binary
	bin  string
	err  error
}

// Build compiles cmd/flashsale once per test process and returns the path of
// the binary. The first call pays for `go build`; later calls, from any test,
// return the same path at once. A build failure fails the calling test with
// the compiler's output. The binary lives in a temporary directory that
// Cleanup removes.
func Build(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		build.bin, build.err = buildServer()
	})
	if build.err != nil {
		t.Fatalf("serverproc: building %s: %v", serverPackage, build.err)
	}
	return build.bin
}

// Cleanup removes the binary that Build made. Call it from TestMain after
// m.Run; without it the binary stays in the system's temporary directory.
func Cleanup() {
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
}

func buildServer() (string, error) {
	dir, err := os.MkdirTemp("", "flashsale-serverproc-")
	if err != nil {
		return "", err
	}
	build.dir = dir
	bin := filepath.Join(dir, "flashsale")
	cmd := exec.Command("go", "build", "-o", bin, serverPackage)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w\n%s", err, out)
	}
	return bin, nil
}

// errNotHealthy is wrapped by WaitHealthy's errors.
var errNotHealthy = errors.New("serverproc: server not healthy")
