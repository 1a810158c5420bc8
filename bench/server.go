package bench

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Limits of a server process started by flashbench.
const (
	serverStartTimeout = 20 * time.Second
	serverStopTimeout  = 15 * time.Second
	serverLogKeptBytes = 64 << 10
)

// ServerProcess is a flash sale server that flashbench started on a free
// loopback port with a fresh data directory of its own.
type ServerProcess struct {
	URL        string // base URL, e.g. http://127.0.0.1:41234
	AdminToken string // the admin token it was started with

	cmd     *exec.Cmd
	dataDir string
	exited  chan error
	log     *tailBuffer
}

// StartServer starts the server binary bin with --addr, --data-dir and
// --admin-token chosen here, followed by extraArgs (for example
// "--fsync=never"), and waits until GET /healthz answers 200.
func StartServer(bin string, extraArgs ...string) (*ServerProcess, error) {
	dataDir, err := os.MkdirTemp("", "flashbench-server-")
	if err != nil {
		return nil, err
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		os.RemoveAll(dataDir)
		return nil, err
	}
	p := &ServerProcess{
		URL:        "http://" + addr,
		AdminToken: fmt.Sprintf("flashbench-%x", time.Now().UnixNano()),
		dataDir:    dataDir,
		exited:     make(chan error, 1),
		log:        &tailBuffer{maxBytes: serverLogKeptBytes},
	}
	args := append([]string{"--addr", addr, "--data-dir", filepath.Join(dataDir, "data"),
		"--admin-token", p.AdminToken}, extraArgs...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		os.RemoveAll(dataDir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	if err := p.waitHealthy(addr); err != nil {
		_ = p.Stop()
		return nil, fmt.Errorf("%w\n%s", err, p.Log())
	}
	return p, nil
}

// waitHealthy polls GET /healthz until it answers 200.
func (p *ServerProcess) waitHealthy(addr string) error {
	hc := newHostClient(addr, 1)
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(serverStartTimeout)
	for time.Now().Before(deadline) {
		status, _, err := hc.GetTimeout(nil, p.URL+"/healthz", time.Second)
		if err == nil && status == 200 {
			return nil
		}
		select {
		case err := <-p.exited:
			p.exited <- err
			return fmt.Errorf("the server exited before it was healthy: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("the server was not healthy within %v", serverStartTimeout)
}

// Stop sends SIGTERM, waits for the exit (killing the process if it takes
// longer than serverStopTimeout) and removes the data directory. It returns
// an error unless the server exited 0 in time.
func (p *ServerProcess) Stop() error {
	defer os.RemoveAll(p.dataDir)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		p.exited <- err
		if err != nil {
			return fmt.Errorf("the server did not exit cleanly on SIGTERM: %w", err)
		}
		return nil
	case <-time.After(serverStopTimeout):
		_ = p.cmd.Process.Kill()
		err := <-p.exited
		p.exited <- err
		return errors.New("the server did not exit within the stop timeout of SIGTERM; killed")
	}
}

// Log returns the last part of the server's output.
func (p *ServerProcess) Log() string { return p.log.String() }

// freeLoopbackAddr returns a loopback address whose port was free a moment
// ago.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// tailBuffer keeps the last maxBytes written to it; safe for concurrent use.
type tailBuffer struct {
	mu       sync.Mutex
	buf      bytes.Buffer
	maxBytes int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if extra := t.buf.Len() - t.maxBytes; extra > 0 {
		t.buf.Next(extra)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
