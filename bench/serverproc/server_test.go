package serverproc

import (
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// TestLifecycle: Start answers on URL, Term and Signal(SIGTERM) exit 0, a
// restart on the same data directory works after Kill9, and Launch + WaitExit report a refusal
// to start with its exit code and output.
func TestLifecycle(t *testing.T) {
	bin := Build(t)
	if again := Build(t); again != bin {
		t.Fatalf("Build built twice: %s, %s", bin, again)
	}
	dir := t.TempDir()

	s := Start(t, bin, dir)
	resp, err := http.Get(s.URL() + "/api/products")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/products: %d", resp.StatusCode)
	}
	if code := s.Term(); code != 0 {
		t.Fatalf("exit code after SIGTERM: %d\n%s", code, s.Output())
	}

	g := Start(t, bin, dir)
	g.Signal(syscall.SIGTERM)
	if code, err := g.WaitExit(StartTimeout); err != nil || code != 0 {
		t.Fatalf("after Signal(SIGTERM): code %d, %v\n%s", code, err, g.Output())
	}
	g.Signal(syscall.SIGTERM) // a signal to an exited process is a no-op

	k := Start(t, bin, dir)
	k.Kill9()
	if code, err := k.WaitExit(time.Second); err != nil || code != -1 {
		t.Fatalf("after Kill9: code %d, %v", code, err)
	}
	k.Kill9() // a second kill is a no-op

	bad := Launch(t, bin, t.TempDir(), "--fsync", "sometimes")
	code, err := bad.WaitExit(StartTimeout)
	if err != nil || code != 2 || !strings.Contains(bad.Output(), "--fsync") {
		t.Fatalf("bad flag: code %d, %v, output:\n%s", code, err, bad.Output())
	}
	if err := bad.WaitHealthy(time.Second); err == nil {
		t.Fatal("WaitHealthy succeeded on an exited server")
	}
}

// TestLaunchAt: LaunchAt listens on the address it was given, and Launch
// (which goes through it) still picks one of its own.
func TestLaunchAt(t *testing.T) {
	bin := Build(t)
	addr := freeLoopbackAddr(t)
	s := LaunchAt(t, bin, addr, t.TempDir())
	if err := s.WaitHealthy(StartTimeout); err != nil {
		t.Fatal(err)
	}
	if s.URL() != "http://"+addr {
		t.Fatalf("URL %s, want http://%s", s.URL(), addr)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz at %s: %d", addr, resp.StatusCode)
	}
	if code := s.Term(); code != 0 {
		t.Fatalf("exit code after SIGTERM: %d\n%s", code, s.Output())
	}
}
