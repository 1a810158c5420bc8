package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/flashsale/flashsale/bench"
)

// TestMain lets the test binary serve as flashbench's ceiling child, and
// removes the server built for the tests.
func TestMain(m *testing.M) {
	bench.RunCeilingChildIfAsked()
	code := m.Run()
	if serverBuild.dir != "" {
		os.RemoveAll(serverBuild.dir)
	}
	os.Exit(code)
}

// serverBuild is ./cmd/flashsale, built once for every test that needs it.
var serverBuild struct {
	once sync.Once
	dir  string
	out  []byte
	err  error
}

// buildServer returns the path of a build of ./cmd/flashsale, or skips.
func buildServer(t *testing.T) string {
	t.Helper()
	serverBuild.once.Do(func() {
		if serverBuild.dir, serverBuild.err = os.MkdirTemp("", "flashbench-cmd-"); serverBuild.err != nil {
			return
		}
		build := exec.Command("go", "build", "-o", filepath.Join(serverBuild.dir, "flashsale"), "./cmd/flashsale")
		build.Dir = filepath.Join("..", "..")
		serverBuild.out, serverBuild.err = build.CombinedOutput()
	})
	if serverBuild.err != nil {
		t.Fatalf("the server (./cmd/flashsale) does not build: %v\n%s", serverBuild.err, serverBuild.out)
	}
	return filepath.Join(serverBuild.dir, "flashsale")
}

// The whole command against a server it starts itself: a clean hot run,
// with the ceiling comparison, must exit 0.
func TestStartServerHotRunExitsZero(t *testing.T) {
	bin := buildServer(t)
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

// grants against the real server: every hold is granted (the product never
// sells out), and --json has the granted phase and the timeline.
func TestStartServerGrantsRunHasOnlyTheGrantedPhase(t *testing.T) {
	bin := buildServer(t)
	jsonPath := filepath.Join(t.TempDir(), "grants.json")
	code := run([]string{"--start-server", bin, "--server-args", "--log-level=warn", "--with-ceiling=false",
		"--workload", "grants", "--duration", "1s", "--conns", "8", "--verbose", "--json", jsonPath})
	if code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var res bench.Result
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	g, s := res.Hot.Phase("granted"), res.Hot.Phase("sold_out")
	if res.Hot.SoldOut || g.Requests == 0 || g.Requests != res.Requests || s.Requests != 0 {
		t.Errorf("grants: sold out %v, %d of %d requests granted, %d refused; want every one granted",
			res.Hot.SoldOut, g.Requests, res.Requests, s.Requests)
	}
	if len(res.Timeline) == 0 {
		t.Error("no timeline in the JSON output")
	}
}
