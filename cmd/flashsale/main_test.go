package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// binPath is the flashsale binary built once by TestMain; the tests run it
// as a real process.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flashsale-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "flashsale")
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building flashsale:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		// The tests' own goroutines (process waiters, log readers, HTTP
		// connections) must all be gone once every server has exited.
		client.CloseIdleConnections()
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// proc is one running server process.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string // http://addr

	mu    sync.Mutex
	lines []string
	exit  chan struct{} // closed when the process has exited and its log is read
	code  int
}

// startProc starts the binary with args and env (KEY=VALUE) and waits until
// it logs "listening". It listens on a free port unless args say otherwise.
func startProc(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := launch(t, env, args...)
	deadline := time.After(20 * time.Second)
	for {
		if addr := p.listeningAddr(); addr != "" {
			p.base = "http://" + addr
			return p
		}
		select {
		case <-p.exit:
			t.Fatalf("flashsale exited with %d before listening:\n%s", p.code, p.log())
		case <-deadline:
			t.Fatalf("flashsale did not listen within 20s:\n%s", p.log())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// launch starts the binary without waiting for it.
func launch(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	if !hasFlag(args, "--addr") {
		args = append([]string{"--addr", "127.0.0.1:0"}, args...)
	}
	p := &proc{t: t, exit: make(chan struct{})}
	p.cmd = exec.Command(binPath, args...)
	p.cmd.Env = append(cleanEnv(), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
		err := p.cmd.Wait()
		p.code = 0
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode()
		} else if err != nil {
			p.code = -1
		}
		close(p.exit)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exit:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exit
		}
	})
	return p
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// cleanEnv is the test's environment without FLASHSALE_* variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envPrefix) {
			env = append(env, kv)
		}
	}
	return env
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

func (p *proc) listeningAddr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["message"] == "listening" {
			addr, _ := m["addr"].(string)
			return addr
		}
		// --log-format console: "... INF listening addr=127.0.0.1:1234 ..."
		if strings.Contains(l, " listening ") {
			for _, f := range strings.Fields(l) {
				if addr, ok := strings.CutPrefix(f, "addr="); ok {
					return addr
				}
			}
		}
	}
	return ""
}

// stop sends sig and waits for the exit code.
func (p *proc) stop(sig syscall.Signal) int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.exit:
	case <-time.After(20 * time.Second):
		p.t.Fatalf("flashsale did not exit after %v:\n%s", sig, p.log())
	}
	return p.code
}

// waitExit waits for a process that should exit on its own.
func (p *proc) waitExit() int {
	p.t.Helper()
	select {
	case <-p.exit:
	case <-time.After(20 * time.Second):
		p.t.Fatalf("flashsale did not exit:\n%s", p.log())
	}
	return p.code
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("not a JSON object: %q", r.body)
	}
	return m
}

var client = &http.Client{Timeout: 10 * time.Second}

// do sends one request; headers are name, value pairs.
func (p *proc) do(method, path, body string, headers ...string) reply {
	p.t.Helper()
	req, err := http.NewRequest(method, p.base+path, strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

func (p *proc) expect(status int, method, path, body string, headers ...string) reply {
	p.t.Helper()
	r := p.do(method, path, body, headers...)
	if r.status != status {
		p.t.Fatalf("%s %s %s: %d %s, want %d", method, path, body, r.status, r.body, status)
	}
	return r
}

func field(t *testing.T, r reply, name string) string {
	t.Helper()
	v, ok := r.obj(t)[name]
	if !ok {
		t.Fatalf("no %s in %s", name, r.body)
	}
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return fmt.Sprint(int64(v))
	}
	return fmt.Sprint(v)
}

func sameBody(t *testing.T, what string, got, want reply) {
	t.Helper()
	if got.status != want.status || !bytes.Equal(got.body, want.body) {
		t.Errorf("%s: %d %s, want %d %s", what, got.status, got.body, want.status, want.body)
	}
}
