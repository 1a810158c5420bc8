package docs_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/transport"
)

// oapiCodegen is the pinned generator (the Makefile's OAPI_CODEGEN names the
// same version), run with `go run` so that it and
// its dependencies stay out of this module's go.mod.
const oapiCodegen = "github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@v2.8.2"

// generateTimeout bounds one go command: the first run downloads and
// builds the generator (minutes on a busy machine); later ones take
// seconds from the module and build caches.
const generateTimeout = 8 * time.Minute

// unreachable tells whether a go command failed because the module proxy
// could not be reached, the only reason this test skips.
func unreachable(out []byte) bool {
	s := string(out)
	for _, sign := range []string{"dial tcp", "no such host", "connection refused", "i/o timeout", "network is unreachable", "TLS handshake timeout"} {
		if strings.Contains(s, sign) {
			return true
		}
	}
	return false
}

func goCommand(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), generateTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	out, err := cmd.CombinedOutput()
	if err != nil {
		if unreachable(out) {
			t.Skipf("the Go module proxy is unreachable, so the generated client cannot be checked: go %s: %v\n%s",
				strings.Join(args, " "), err, out)
		}
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestGeneratedClientWorks: oapi-codegen (pinned) accepts
// docs/openapi.yaml and generates a Go client that compiles and vets; a
// small program over it (testdata/openapi-client) then runs a whole
// checkout against a real server on loopback, so the generated types
// decode what the server sends.
func TestGeneratedClientWorks(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command on PATH")
	}
	spec, err := filepath.Abs("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join("testdata", "openapi-client", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "flashclient"), 0o755); err != nil {
		t.Fatal(err)
	}
	goCommand(t, dir, "run", oapiCodegen, "-generate", "types,client", "-package", "flashclient",
		"-o", filepath.Join(dir, "flashclient", "client.go"), spec)
	bin := filepath.Join(dir, "openapi-client")
	goCommand(t, dir, "build", "-o", bin, ".")
	goCommand(t, dir, "vet", "./...")

	base := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, base).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("the generated client's checkout failed: %v\n%s", err, out)
	}
}

// startServer serves the front end over an in-memory engine on loopback.
func startServer(t *testing.T) string {
	t.Helper()
	cfg := engine.DefaultConfig()
	cfg.Journal = &engine.MemJournal{}
	eng := engine.New(cfg)
	eng.Start()
	if _, err := eng.Seed([]engine.ProductSpec{{ID: 1, Name: "Flash Widget", PriceCents: 4999, TotalStock: 10, MaxPerHold: 2}}); err != nil {
		t.Fatal(err)
	}
	hs := transport.New(eng, transport.Options{}).HTTPServer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = hs.Shutdown()
		<-done
		eng.Stop()
	})
	return "http://" + ln.Addr().String()
}
