package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/flashsale/flashsale/bench"
)

// TestMain lets the test binary serve as flashbench's ceiling child.
func TestMain(m *testing.M) {
	bench.RunCeilingChildIfAsked()
	os.Exit(m.Run())
}

// The whole command against a server it starts itself: a clean hot run,
// with the ceiling comparison, must exit 0.
func TestStartServerHotRunExitsZero(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "flashsale")
	build := exec.Command("go", "build", "-o", bin, "./cmd/flashsale")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the server (./cmd/flashsale) does not build: %v\n%s", err, out)
	}
	jsonPath := filepath.Join(t.TempDir(), "hot.json")
	code := run([]string{"--start-server", bin, "--server-args", "--log-level=warn",
		"--workload", "hot", "--stock", "30", "--duration", "1s", "--conns", "8", "--json", jsonPath})
	if code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if fi, err := os.Stat(jsonPath); err != nil || fi.Size() == 0 {
		t.Errorf("--json file: %v", err)
	}
}
