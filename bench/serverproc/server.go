package serverproc

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Time limits of a server's life, each a bound on a wait that would
// otherwise hang a test.
const (
	// StartTimeout bounds how long Start waits for GET /healthz to answer 200.
	StartTimeout = 10 * time.Second
	// termTimeout bounds how long Term waits for the process to exit; the
	// server itself gives in-flight requests 10 seconds.
	termTimeout = 20 * time.Second
	// killTimeout bounds the wait for a SIGKILLed process to be reaped.
	killTimeout = 10 * time.Second
	// healthPollInterval is the pause between two /healthz probes.
	healthPollInterval = 20 * time.Millisecond
	// portAttempts is how often Start tries a new port when another process
	// took the one it picked.
	portAttempts = 3
	// failureOutputBytesMax caps the output logged when a test fails.
	failureOutputBytesMax = 64 << 10
)

// Server is one running (or exited) flashsale process.
type Server struct {
	t    testing.TB
	cmd  *exec.Cmd
	addr string // host:port it was told to listen on
	out  *outputBuffer

	done     chan struct{} // closed once the process has exited and been reaped
	exitCode int           // valid after done: the exit code, -1 if killed by a signal
}

// Start launches bin on dataDir and waits until GET /healthz answers 200,
// failing the test (with the server's output) if that does not happen within
// StartTimeout. The server is started as
//
//	bin --addr 127.0.0.1:<free port> --data-dir dataDir --log-level warn extraFlags...
//
// so extraFlags may override the log level. FLASHSALE_* variables of the
// test's environment are not passed on: flags alone configure the server.
// The process is killed when the test ends.
func Start(t testing.TB, bin, dataDir string, extraFlags ...string) *Server {
	t.Helper()
	var err error
	for attempt := 0; attempt < portAttempts; attempt++ {
		s := Launch(t, bin, dataDir, extraFlags...)
		if err = s.WaitHealthy(StartTimeout); err == nil {
			return s
		}
		s.Kill9()
		if !s.lostPortRace() {
			break
		}
	}
	t.Fatalf("%v", err)
	return nil
}

// Launch starts bin like Start but does not wait for it to become healthy:
// for servers expected to refuse to start, or to measure start-up. Follow it
// with WaitHealthy or WaitExit.
func Launch(t testing.TB, bin, dataDir string, extraFlags ...string) *Server {
	t.Helper()
	return LaunchAt(t, bin, freeLoopbackAddr(t), dataDir, extraFlags...)
}

// LaunchAt is Launch with the listen address given, for a server whose
// address is fixed in advance: a node of a cluster, whose address is in the
// cluster file every node reads. It does not wait for the server to become
// healthy, and it does not retry when addr is taken (the caller chose it).
// The server is started as
//
//	bin --addr addr --data-dir dataDir --log-level warn extraFlags...
func LaunchAt(t testing.TB, bin, addr, dataDir string, extraFlags ...string) *Server {
	t.Helper()
	args := append([]string{"--addr", addr, "--data-dir", dataDir, "--log-level", "warn"}, extraFlags...)
	s := &Server{t: t, addr: addr, out: &outputBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Env = environWithout("FLASHSALE_")
	s.cmd.Stdout = s.out
	s.cmd.Stderr = s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("serverproc: starting %s: %v", bin, err)
	}
	go s.reap()
	t.Cleanup(func() {
		s.Kill9()
		if t.Failed() {
			t.Logf("output of flashsale at %s (%s):\n%s", addr, strings.Join(args, " "), s.outputTail(failureOutputBytesMax))
		}
	})
	return s
}

// URL is the server's base URL, e.g. http://127.0.0.1:41234; the API is
// under URL()+"/api".
func (s *Server) URL() string { return "http://" + s.addr }

// Output is everything the process wrote to stdout and stderr so far (the
// last MiB of it if it wrote more).
func (s *Server) Output() string { return s.out.String() }

// WaitHealthy waits up to timeout for GET /healthz to answer 200. It fails
// early if the process exits first; the error carries the process's output.
func (s *Server) WaitHealthy(timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(s.URL() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("%w: flashsale at %s exited with code %d before /healthz answered 200; output:\n%s",
				errNotHealthy, s.addr, s.exitCode, s.Output())
		case <-time.After(healthPollInterval):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: flashsale at %s: /healthz did not answer 200 within %v (last error: %v); output:\n%s",
				errNotHealthy, s.addr, timeout, err, s.Output())
		}
	}
}

// WaitExit waits up to timeout for the process to exit on its own and
// returns its exit code (-1 if a signal killed it). On timeout the process
// keeps running and the error says so.
func (s *Server) WaitExit(timeout time.Duration) (int, error) {
	select {
	case <-s.done:
		return s.exitCode, nil
	case <-time.After(timeout):
		return 0, fmt.Errorf("serverproc: flashsale at %s still running after %v", s.addr, timeout)
	}
}

// Kill9 sends SIGKILL and waits until the process is gone, so its data
// directory is free for the next start. It does nothing if the process has
// already exited.
func (s *Server) Kill9() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	if _, err := s.WaitExit(killTimeout); err != nil {
		s.t.Errorf("serverproc: SIGKILL: %v", err)
	}
}

// Term sends SIGTERM, waits for the process to exit and returns its exit
// code. A server that does not exit within 20 seconds fails the test and is
// killed; Term then returns -1.
func (s *Server) Term() int {
	select {
	case <-s.done:
		return s.exitCode
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	code, err := s.WaitExit(termTimeout)
	if err != nil {
		s.t.Errorf("serverproc: SIGTERM: %v; killing it", err)
		s.Kill9()
		return -1
	}
	return code
}

// Signal sends sig to the process without waiting for anything, for
// sequences such as SIGTERM followed by Kill9 during the shutdown. It does
// nothing if the process has already exited.
func (s *Server) Signal(sig syscall.Signal) {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(sig)
}

// reap waits for the process and records its exit code.
func (s *Server) reap() {
	err := s.cmd.Wait()
	s.exitCode = 0
	if err != nil {
		s.exitCode = -1
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			s.exitCode = exit.ExitCode()
		}
	}
	close(s.done)
}

// lostPortRace reports whether the process exited because its port was
// taken between freeLoopbackAddr and its own listen.
func (s *Server) lostPortRace() bool {
	out := s.Output()
	return strings.Contains(out, "cannot listen") && strings.Contains(out, "address already in use")
}

func (s *Server) outputTail(bytesMax int) string {
	out := s.Output()
	if len(out) > bytesMax {
		return "…" + out[len(out)-bytesMax:]
	}
	return out
}

// freeLoopbackAddr returns 127.0.0.1:<port> for a port that was free a
// moment ago.
func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("serverproc: finding a free port: %v", err)
	}
	defer ln.Close()
	return "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// environWithout is the test's environment minus variables starting with prefix.
func environWithout(prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) {
			env = append(env, kv)
		}
	}
	return env
}

// Pid is the process id of the server (for reading its /proc figures).
func (s *Server) Pid() int { return s.cmd.Process.Pid }
